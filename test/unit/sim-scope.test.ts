/**
 * A simulated node's RPC loads its own node and the nodes its time-dependent state involves, not the
 * whole cluster (adapters/sim/hardware-rows.ts `load`, adapters/sim/state.ts `advance`): other
 * nodes' rows are neither read nor written, and time-dependent state (out-of-sync data, resync,
 * migration) computed after a node was left alone for a while is what loading everything at every
 * access gives.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { buildHardware } from '../../adapters/sim/cluster.js';
import { evacuationClusterConfig } from '../../adapters/sim/evacuation.js';
import { SimHardware } from '../../adapters/sim/hardware.js';
import { simNode } from '../../worker/backends.js';
import type { SimDrbd } from '../../adapters/sim/state.js';
import { rpcInstanceFor } from '../../domain/instance.js';

// Six nodes in a ring: vm00i runs on node i with its secondary on node i+1 (vm006's on node1).
const cfg = evacuationClusterConfig('scope', { nodes: 6, instances: 6, spread: true });
const inst = (name: string, node: string) => rpcInstanceFor(cfg, cfg.instances[name]!, node);

const dirs: string[] = [];
const open: SimHardware[] = [];
let clock = 0;
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  clock = Date.UTC(2030, 0, 1);
  vi.setSystemTime(clock);
});
afterEach(() => {
  vi.useRealTimers();
  for (const hw of open.splice(0)) hw.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Moves real (and so simulated) time forward by `sec` seconds. */
const wait = (sec: number) => vi.setSystemTime((clock += sec * 1000));

async function seeded(): Promise<SimHardware> {
  const dir = mkdtempSync(join(tmpdir(), 'sim-scope-test-'));
  dirs.push(dir);
  const hw = new SimHardware(join(dir, 'hardware.db'));
  open.push(hw);
  await hw.replace(buildHardware(cfg, { timeFactor: 1, diskWriteRate: 2, syncRate: 10 }));
  return hw;
}

function versions(hw: SimHardware): Record<string, number> {
  const db = new Database(hw.path, { readonly: true });
  try {
    const rows = db.prepare('SELECT k, version FROM nodes').all() as { k: string; version: number }[];
    return Object.fromEntries(rows.map((r) => [r.k, r.version]));
  } finally {
    db.close();
  }
}

/** vm004's device on `node` (its primary is node4, its secondary node5). */
const vm004 = (hw: SimHardware, node: string, full = false): SimDrbd => {
  const { state } = full ? hw.read() : hw.readNodes([node]);
  return Object.values(state.nodes[node]!.drbd).find((d) => d.instance === 'vm004')!;
};

describe('what an RPC loads', () => {
  test("an RPC on node1 sees node1 and its DRBD peers' nodes only", async () => {
    const hw = await seeded();
    expect(Object.keys(hw.readNodes(['node1']).state.nodes)).toEqual(['node1', 'node2', 'node6']);
    expect(Object.keys(hw.readNodes(['node4']).state.nodes)).toEqual(['node3', 'node4', 'node5']);
    expect(Object.keys(hw.read().state.nodes)).toHaveLength(6);
  });

  test('a node whose rows are not loaded is not touched and keeps its row versions, while its out-of-sync data grows', async () => {
    const hw = await seeded();
    // vm004's secondary drops the link: its primary on node4 accumulates out-of-sync data.
    await simNode(hw, 'node5').drbdDisconnectNet(inst('vm004', 'node5'));
    const v0 = versions(hw);
    const node1 = simNode(hw, 'node1');
    for (let i = 0; i < 5; i++) {
      wait(2);
      await node1.nodeInfo();
      await node1.instanceBalloonMemory(inst('vm001', 'node1'), 64 + i);
    }
    expect(versions(hw)).toEqual({ ...v0, node1: v0.node1! + 5 });
    // 10 s at 2 MiB/s, whether node4 is loaded alone or with everything.
    expect(vm004(hw, 'node4').outOfSync).toBeCloseTo(20, 6);
    expect(vm004(hw, 'node4', true).outOfSync).toBeCloseTo(20, 6);
  });
});

describe('the index of active migrations', () => {
  test("finds a node's incoming migration's source, and is rebuilt when a database of an earlier version is opened", async () => {
    const hw = await seeded();
    // vm001 (node1) migrating to node4, which no DRBD device relates to node1.
    await hw.mutate((s, now) => {
      s.nodes.node1!.processes.vm001!.migration = {
        ...{ targetNode: 'node4', targetIp: '198.51.100.14', port: 8102, live: true, startedAt: now },
        ...{ ram: 128, bandwidth: 0, dirtyRate: 0, status: 'active' },
      };
    });
    // node4, its peers (node3, node5), the source node1 and that end's peer for vm001 (node2).
    const seen = () => Object.keys(hw.readNodes(['node4']).state.nodes);
    expect(seen()).toEqual(['node1', 'node2', 'node3', 'node4', 'node5']);
    hw.close();
    const db = new Database(hw.path);
    db.exec('DROP TABLE migrations');
    db.close();
    expect(seen()).toEqual(['node1', 'node2', 'node3', 'node4', 'node5']);
    await hw.mutate((s) => void (s.nodes.node1!.processes.vm001!.migration!.status = 'cancelled'));
    expect(seen()).toEqual(['node3', 'node4', 'node5']);
  });
});

describe('time-dependent state after a gap', () => {
  /**
   * The same story on two copies of the hardware: on `gap` only node1 is accessed in between, on
   * `every` everything is loaded (and advanced) every second, as every access did before.
   */
  async function story(): Promise<{ gap: SimHardware; every: SimHardware }> {
    const gap = await seeded();
    const every = await seeded();
    for (const hw of [gap, every]) await simNode(hw, 'node5').drbdDisconnectNet(inst('vm004', 'node5'));
    for (let i = 0; i < 30; i++) {
      wait(1);
      await simNode(gap, 'node1').nodeInfo();
      await every.mutate(() => undefined);
    }
    // The link comes back: node4 resyncs its out-of-sync data to node5.
    for (const hw of [gap, every]) await simNode(hw, 'node5').drbdAttachNet(inst('vm004', 'node5'), false);
    return { gap, every };
  }

  test('out-of-sync data and the resync it starts are those of a full load at every access', async () => {
    const { gap, every } = await story();
    expect(vm004(gap, 'node4').resync).toEqual(vm004(every, 'node4').resync);
    expect(vm004(gap, 'node4').resync).toMatchObject({ role: 'SyncSource', total: 60 });
    wait(3);
    expect(vm004(gap, 'node5', true)).toEqual(vm004(every, 'node5', true));
    const status = await simNode(gap, 'node4').blockdevFind(inst('vm004', 'node4'), 0);
    expect(status).toMatchObject({ isDegraded: true, ldisk: 'SYNC' });
    expect(status!.syncPercent).toBeCloseTo(50, 6);
    wait(4); // 60 MiB at 10 MiB/s: done after 6 s
    expect(await simNode(gap, 'node5').blockdevFind(inst('vm004', 'node5'), 0)).toEqual({
      isDegraded: false,
      syncPercent: null,
      ldisk: 'OKAY',
    });
    expect(gap.read().state.nodes).toEqual(every.read().state.nodes);
  });

  test('a migration completed while neither end was loaded is seen complete from its target, found by the index of migrations', async () => {
    const hw = await seeded();
    const [src, dst] = ['node2', 'node3'];
    const a = simNode(hw, src);
    const b = simNode(hw, dst);
    await Promise.all([a.drbdDisconnectNet(inst('vm002', src)), b.drbdDisconnectNet(inst('vm002', dst))]);
    await Promise.all([a.drbdAttachNet(inst('vm002', src), true), b.drbdAttachNet(inst('vm002', dst), true)]);
    await b.blockdevOpen(inst('vm002', dst), false);
    const info = await a.migrationInfo(inst('vm002', src));
    const { port } = await b.acceptInstance(inst('vm002', dst), info, '198.51.100.13');
    await a.instanceMigrate(inst('vm002', src), { node: dst, ip: '198.51.100.13', port }, true);
    expect(await b.instanceInfo(inst('vm002', dst))).toMatchObject({ state: 'incoming' });
    // As for a sharedfile instance: no DRBD device relates the two ends.
    await hw.mutate((s) => {
      for (const n of [src, dst])
        for (const [m, d] of Object.entries(s.nodes[n]!.drbd)) if (d.instance === 'vm002') delete s.nodes[n]!.drbd[m];
    });
    expect(Object.keys(hw.readNodes([dst]).state.nodes)).toEqual(['node2', 'node3', 'node4']);
    wait(60);
    await simNode(hw, 'node5').nodeInfo(); // elsewhere: neither end is loaded
    expect(await b.instanceInfo(inst('vm002', dst))).toMatchObject({ state: 'running' });
    expect(await a.instanceGetMigrationStatus(inst('vm002', src))).toMatchObject({ status: 'completed' });
  });
});
