/**
 * The simulated node daemon (adapters/sim/node.ts): DRBD roles and connection states, resync,
 * QEMU-like migration, node information, the RPC log and fault injection — all read back from the
 * shared hardware document.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { rpcInstanceFor, type RpcInstance } from '../../domain/instance.js';
import { NodeRpcError, type NodeRpc } from '../../domain/ports.js';
import {
  buildHardware,
  defaultClusterConfig,
  inject,
  instanceHwDetail,
  reconnect,
  type InjectState,
  type InstanceHwDetail,
} from '../../adapters/sim/cluster.js';
import { addFault, withFaults, type FaultOptions, type FaultSpec } from '../../adapters/sim/faults.js';
import { SimHardware } from '../../adapters/sim/hardware.js';
import { simNode } from '../../worker/backends.js';
import type { SimDrbd, SimParams, SimProcess, SimState } from '../../adapters/sim/state.js';
import type { ClusterConfig } from '../../domain/types.js';

// ---- harness ------------------------------------------------------------------------------------

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Secondary (replication) IPs of the default cluster. */
const SIP: Record<string, string> = { node1: '198.51.100.11', node2: '198.51.100.12', node3: '198.51.100.13' };

class Sim {
  readonly nodes: Record<string, NodeRpc>;
  constructor(
    readonly hw: SimHardware,
    readonly cfg: ClusterConfig,
  ) {
    this.nodes = Object.fromEntries(Object.keys(cfg.nodes).map((n) => [n, simNode(hw, n)]));
  }

  node(name: string): NodeRpc {
    const n = this.nodes[name];
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  inst(instance: string, node: string): RpcInstance {
    return rpcInstanceFor(this.cfg, this.cfg.instances[instance]!, node);
  }

  state(): SimState {
    return this.hw.read().state;
  }

  detail(instance: string): InstanceHwDetail {
    const { state, now } = this.hw.read();
    return instanceHwDetail(state, now, this.cfg.instances[instance]!);
  }

  /** Hardware truth of disk 0 of `instance` on `node`. */
  disk(instance: string, node: string) {
    return this.detail(instance).disks[0]!.nodes[node]!;
  }

  syncPercent(instance: string, node: string): number | null {
    return this.detail(instance).syncPercent[0]![node] ?? null;
  }

  dev(instance: string, node: string): SimDrbd {
    const minor = this.inst(instance, node).disks[0]!.drbd!.minor;
    return this.state().nodes[node]!.drbd[String(minor)]!;
  }

  proc(instance: string, node: string): SimProcess | undefined {
    return this.state().nodes[node]!.processes[instance];
  }

  /** Moves simulated time forward by `ms` without waiting. */
  async jump(ms: number): Promise<void> {
    await this.hw.mutate((s) => {
      s.clock.simBase += ms;
    });
  }

  async set(params: Partial<SimParams>): Promise<void> {
    await this.hw.mutate((s) => void Object.assign(s.params, params));
  }

  async inject(instance: string, node: string, what: InjectState): Promise<void> {
    await this.hw.mutate((s, now) => inject(s, now, this.cfg, this.cfg.instances[instance]!, node, what));
  }

  async disconnect(instance: string, a: string, b: string): Promise<void> {
    await Promise.all([this.node(a).drbdDisconnectNet(this.inst(instance, a)), this.node(b).drbdDisconnectNet(this.inst(instance, b))]);
  }

  async attach(instance: string, a: string, b: string, multimaster: boolean): Promise<void> {
    await Promise.all([
      this.node(a).drbdAttachNet(this.inst(instance, a), multimaster),
      this.node(b).drbdAttachNet(this.inst(instance, b), multimaster),
    ]);
  }

  /** Ganeti's pre-migration disk dance: standalone, dual-master, open on the target. */
  async prepareTarget(instance: string, source: string, target: string): Promise<void> {
    await this.disconnect(instance, source, target);
    await this.attach(instance, source, target, true);
    await this.node(target).blockdevOpen(this.inst(instance, target), false);
  }

  /** accept_instance on the target with the source's runtime; returns the migration target. */
  async accept(instance: string, source: string, target: string) {
    const info = await this.node(source).migrationInfo(this.inst(instance, source));
    const { port } = await this.node(target).acceptInstance(this.inst(instance, target), info, SIP[target]!);
    return { info, target: { node: target, ip: SIP[target]!, port } };
  }

  async addFault(spec: FaultSpec) {
    return this.hw.mutate((s) => addFault(s, spec));
  }

  faulty(node: string, opts?: FaultOptions): NodeRpc {
    return withFaults(this.node(node), this.hw, opts);
  }
}

async function sim(params: Partial<SimParams> = {}): Promise<Sim> {
  const dir = mkdtempSync(join(tmpdir(), 'sim-node-test-'));
  dirs.push(dir);
  const cfg = defaultClusterConfig('simtest');
  const hw = new SimHardware(join(dir, 'hardware.db'));
  await hw.replace(buildHardware(cfg, { timeFactor: 1000, ...params }));
  return new Sim(hw, cfg);
}

const HELD_OPEN = /held open/;

// ---- DRBD ---------------------------------------------------------------------------------------

describe('DRBD roles (blockdev_close / blockdev_open)', () => {
  test('closing the disks on the primary fails while the instance process holds them open', async () => {
    const s = await sim();
    await expect(s.node('node1').blockdevClose(s.inst('web1', 'node1'))).rejects.toThrow(HELD_OPEN);
    expect(s.disk('web1', 'node1').role).toBe('Primary');
    expect(s.detail('web1').links).toEqual(['node1']);
  });

  test('closing the disks on the secondary keeps it Secondary and is idempotent', async () => {
    const s = await sim();
    await s.node('node2').blockdevClose(s.inst('web1', 'node2'));
    await s.node('node2').blockdevClose(s.inst('web1', 'node2'));
    expect(s.disk('web1', 'node2')).toEqual({ role: 'Secondary', connection: 'Connected', disk: 'UpToDate', dualPrimary: false });
    expect(s.disk('web1', 'node1').role).toBe('Primary');
    expect(s.detail('web1').links).toEqual(['node1']);
  });

  test('closing the primary succeeds once the instance is stopped, making it Secondary and removing its links', async () => {
    const s = await sim();
    await s.inject('web1', 'node1', 'stopped');
    await s.node('node1').blockdevClose(s.inst('web1', 'node1'));
    expect(s.disk('web1', 'node1').role).toBe('Secondary');
    expect(s.detail('web1').links).toEqual([]);
  });

  test('promoting the secondary while connected single-primary fails with "Multiple primaries not allowed"', async () => {
    const s = await sim();
    await expect(s.node('node2').blockdevOpen(s.inst('web1', 'node2'), false)).rejects.toThrow(/Multiple primaries not allowed/);
    expect(s.disk('web1', 'node2').role).toBe('Secondary');
    expect(s.detail('web1').links).toEqual(['node1']);
  });

  test('promoting the secondary succeeds after disconnect and dual-master attach on both nodes', async () => {
    const s = await sim();
    await s.disconnect('web1', 'node1', 'node2');
    await s.attach('web1', 'node1', 'node2', true);
    await s.node('node2').blockdevOpen(s.inst('web1', 'node2'), false);
    const primary = { role: 'Primary', connection: 'Connected', disk: 'UpToDate', dualPrimary: true };
    expect(s.disk('web1', 'node1')).toEqual(primary);
    expect(s.disk('web1', 'node2')).toEqual(primary);
    expect(s.detail('web1').links).toEqual(['node1', 'node2']);
  });
});

describe('DRBD network (drbd_disconnect_net / drbd_attach_net)', () => {
  test('disconnecting one end makes it StandAlone and leaves the peer waiting in WFConnection', async () => {
    const s = await sim();
    await s.node('node1').drbdDisconnectNet(s.inst('web1', 'node1'));
    expect(s.disk('web1', 'node1').connection).toBe('StandAlone');
    expect(s.disk('web1', 'node2').connection).toBe('WFConnection');
    await s.node('node2').drbdDisconnectNet(s.inst('web1', 'node2'));
    expect(s.disk('web1', 'node1').connection).toBe('StandAlone');
    expect(s.disk('web1', 'node2').connection).toBe('StandAlone');
    // other instances' devices are untouched
    expect(s.disk('web3', 'node1').connection).toBe('Connected');
  });

  test('attaching only one side times out with "Timeout in disk reconnecting" and leaves it in WFConnection', async () => {
    const s = await sim({ timeFactor: 2000 });
    await s.disconnect('web1', 'node1', 'node2');
    const t0 = Date.now();
    await expect(s.node('node1').drbdAttachNet(s.inst('web1', 'node1'), false)).rejects.toThrow('Timeout in disk reconnecting');
    // Ganeti's 120 s, divided by the time factor
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(s.disk('web1', 'node1').connection).toBe('WFConnection');
    expect(s.disk('web1', 'node2').connection).toBe('StandAlone');
    const errors = s.state().log.filter((e) => e.rpc === 'drbd_attach_net' && e.outcome === 'error');
    expect(errors).toEqual([expect.objectContaining({ node: 'node1', instance: 'web1', error: 'Timeout in disk reconnecting' })]);
  });

  test('the wait for the peer is the hardware parameter reconnectTimeoutSec, scaled by the time factor', async () => {
    const s = await sim({ timeFactor: 2000, reconnectTimeoutSec: 600 });
    await s.disconnect('web1', 'node1', 'node2');
    const t0 = Date.now();
    await expect(s.node('node1').drbdAttachNet(s.inst('web1', 'node1'), false)).rejects.toThrow('Timeout in disk reconnecting');
    // 600 s / 2000 = 300 ms, not 120 s / 2000 = 60 ms
    expect(Date.now() - t0).toBeGreaterThanOrEqual(295);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(s.disk('web1', 'node1').connection).toBe('WFConnection');
  });

  test('attaching both sides concurrently in single-master mode connects them', async () => {
    const s = await sim();
    await s.disconnect('web1', 'node1', 'node2');
    await s.attach('web1', 'node1', 'node2', false);
    const after = s.detail('web1');
    for (const n of ['node1', 'node2']) {
      expect(['Connected', 'SyncSource', 'SyncTarget']).toContain(after.disks[0]!.nodes[n]!.connection);
      expect(after.disks[0]!.nodes[n]!.dualPrimary).toBe(false);
    }
    expect(after.disks[0]!.nodes.node1!.role).toBe('Primary');
    expect(after.disks[0]!.nodes.node2!.role).toBe('Secondary');
  });

  test('attaching again in the same mode is idempotent', async () => {
    const s = await sim();
    const before = s.state().logSeq;
    await s.node('node1').drbdAttachNet(s.inst('web1', 'node1'), false);
    await s.node('node2').drbdAttachNet(s.inst('web1', 'node2'), false);
    expect(s.disk('web1', 'node1')).toEqual({ role: 'Primary', connection: 'Connected', disk: 'UpToDate', dualPrimary: false });
    expect(s.disk('web1', 'node2')).toEqual({ role: 'Secondary', connection: 'Connected', disk: 'UpToDate', dualPrimary: false });
    const calls = s.state().log.filter((e) => e.seq > before);
    expect(calls.map((e) => `${e.rpc}@${e.node}:${e.outcome}`)).toEqual(['drbd_attach_net@node1:ok', 'drbd_attach_net@node2:ok']);
  });

  test('attaching a configured device in the other mode fails "not standalone" and changes nothing', async () => {
    const s = await sim();
    await expect(s.node('node1').drbdAttachNet(s.inst('web1', 'node1'), true)).rejects.toThrow(/not standalone in AttachNet/);
    expect(s.disk('web1', 'node1')).toEqual({ role: 'Primary', connection: 'Connected', disk: 'UpToDate', dualPrimary: false });
    expect(s.disk('web1', 'node2').dualPrimary).toBe(false);
  });

  test('two Primaries reconnecting single-master split-brain: neither connects and both calls time out', async () => {
    const s = await sim({ timeFactor: 2000 });
    await s.disconnect('web1', 'node1', 'node2');
    await s.node('node2').blockdevOpen(s.inst('web1', 'node2'), false); // standalone: promotion allowed
    expect(s.disk('web1', 'node2').role).toBe('Primary');

    const seen = new Set<string>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const d = s.detail('web1').disks[0]!.nodes;
        seen.add(`${d.node1!.connection}/${d.node2!.connection}`);
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    const results = await Promise.allSettled([
      s.node('node1').drbdAttachNet(s.inst('web1', 'node1'), false),
      s.node('node2').drbdAttachNet(s.inst('web1', 'node2'), false),
    ]);
    polling = false;
    await poller;

    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'ok'))).toEqual([
      'Timeout in disk reconnecting',
      'Timeout in disk reconnecting',
    ]);
    expect([...seen].filter((c) => /Connected|Sync/.test(c))).toEqual([]);
    const end = s.detail('web1').disks[0]!.nodes;
    expect([end.node1!.connection, end.node2!.connection]).toContain('StandAlone');
    expect([end.node1!.role, end.node2!.role]).toEqual(['Primary', 'Primary']);
    // both sides kept finding their device dropped to StandAlone and re-issued the attach
    const reissued = s.state().log.filter((e) => e.rpc === 'drbd_attach_net' && e.detail === 'single-master (re-issued)');
    expect(new Set(reissued.map((e) => e.node))).toEqual(new Set(['node1', 'node2']));
  });

  test('the split-brain handshake itself drops both ends to StandAlone', async () => {
    const s = await sim();
    await s.disconnect('web1', 'node1', 'node2');
    await s.node('node2').blockdevOpen(s.inst('web1', 'node2'), false);
    await s.hw.mutate((st, now) => reconnect(st, now, s.cfg.instances.web1!));
    expect(s.disk('web1', 'node1')).toMatchObject({ role: 'Primary', connection: 'StandAlone' });
    expect(s.disk('web1', 'node2')).toMatchObject({ role: 'Primary', connection: 'StandAlone' });
    expect(s.dev('web1', 'node1').resync).toBeNull();
    expect(s.dev('web1', 'node2').resync).toBeNull();
  });
});

describe('DRBD resync (drbd_wait_sync / blockdev_find)', () => {
  test('a running Primary accumulates out-of-sync data while disconnected and resyncs it on reconnect', async () => {
    const s = await sim({ syncRate: 1, diskWriteRate: 1 });
    await s.disconnect('web1', 'node1', 'node2');
    await s.jump(600_000); // 600 simulated seconds of guest writes at 1 MiB/s
    expect(s.dev('web1', 'node1').outOfSync).toBeGreaterThanOrEqual(600);
    expect(s.dev('web1', 'node2').outOfSync).toBe(0);

    await s.attach('web1', 'node1', 'node2', false);
    expect(s.disk('web1', 'node1')).toMatchObject({ connection: 'SyncSource', disk: 'UpToDate' });
    expect(s.disk('web1', 'node2')).toMatchObject({ connection: 'SyncTarget', disk: 'Inconsistent' });
    const pct = s.detail('web1').syncPercent[0]!;
    const p1 = pct.node2!;
    expect(p1).toBeGreaterThanOrEqual(0);
    expect(p1).toBeLessThan(50);
    expect(pct.node1).toBe(p1); // the resync is mirrored on both ends

    const during = await s.node('node1').drbdWaitSync(s.inst('web1', 'node1'));
    expect(during.allDone).toBe(false);
    expect(during.minPercent).toBeLessThan(100);
    expect(during.minPercent).toBeGreaterThanOrEqual(p1);

    await s.jump(200_000); // 200 MiB more at 1 MiB/s of a ~600–700 MiB resync
    const p2 = s.syncPercent('web1', 'node2')!;
    expect(p2).toBeGreaterThan(p1 + 20);
    expect(p2).toBeLessThan(100);

    await s.jump(1_000_000);
    expect(s.disk('web1', 'node1')).toEqual({ role: 'Primary', connection: 'Connected', disk: 'UpToDate', dualPrimary: false });
    expect(s.disk('web1', 'node2')).toEqual({ role: 'Secondary', connection: 'Connected', disk: 'UpToDate', dualPrimary: false });
    expect(s.syncPercent('web1', 'node1')).toBeNull();
    expect(s.dev('web1', 'node1').outOfSync).toBe(0);
    expect(await s.node('node1').drbdWaitSync(s.inst('web1', 'node1'))).toEqual({ allDone: true, minPercent: 100 });
    expect(await s.node('node2').drbdWaitSync(s.inst('web1', 'node2'))).toEqual({ allDone: true, minPercent: 100 });
  });

  test('drbd_wait_sync reports done at 100 % on a connected, in-sync device', async () => {
    const s = await sim();
    expect(await s.node('node2').drbdWaitSync(s.inst('web1', 'node2'))).toEqual({ allDone: true, minPercent: 100 });
    expect(s.state().log.at(-1)).toMatchObject({ rpc: 'drbd_wait_sync', node: 'node2', outcome: 'ok' });
  });

  test('drbd_wait_sync fails "not in sync" on a StandAlone device', async () => {
    const s = await sim();
    await s.disconnect('web1', 'node1', 'node2');
    await expect(s.node('node1').drbdWaitSync(s.inst('web1', 'node1'))).rejects.toThrow(/is not in sync: stats=StandAlone/);
    expect(s.state().log.at(-1)).toMatchObject({ rpc: 'drbd_wait_sync', node: 'node1', outcome: 'error' });
  });

  test('blockdev_find reports a connected, UpToDate device as not degraded', async () => {
    const s = await sim();
    expect(await s.node('node1').blockdevFind(s.inst('web1', 'node1'), 0)).toEqual({ isDegraded: false, syncPercent: null, ldisk: 'OKAY' });
    expect(await s.node('node2').blockdevFind(s.inst('web1', 'node2'), 0)).toEqual({ isDegraded: false, syncPercent: null, ldisk: 'OKAY' });
  });

  test('blockdev_find reports a disconnected device as degraded', async () => {
    const s = await sim();
    await s.node('node2').drbdDisconnectNet(s.inst('web1', 'node2'));
    // StandAlone end
    expect(await s.node('node2').blockdevFind(s.inst('web1', 'node2'), 0)).toEqual({
      isDegraded: true,
      syncPercent: null,
      ldisk: 'FAULTY',
    });
    // the peer waits in WFConnection: degraded too, its local disk still fine
    expect(await s.node('node1').blockdevFind(s.inst('web1', 'node1'), 0)).toMatchObject({ isDegraded: true, syncPercent: null });
  });

  test('blockdev_find reports an Inconsistent device as degraded, also while it resyncs', async () => {
    const s = await sim({ syncRate: 1 });
    await s.inject('web1', 'node2', 'degraded');
    expect(s.disk('web1', 'node2')).toMatchObject({ connection: 'StandAlone', disk: 'Inconsistent' });
    expect(await s.node('node2').blockdevFind(s.inst('web1', 'node2'), 0)).toMatchObject({ isDegraded: true });

    await s.node('node2').drbdAttachNet(s.inst('web1', 'node2'), false);
    expect(s.disk('web1', 'node2')).toMatchObject({ connection: 'SyncTarget', disk: 'Inconsistent' });
    const found = await s.node('node2').blockdevFind(s.inst('web1', 'node2'), 0);
    expect(found).toMatchObject({ isDegraded: true, ldisk: 'SYNC' });
    expect(found!.syncPercent).toBeGreaterThanOrEqual(0);
    expect(found!.syncPercent).toBeLessThan(100);
  });

  test('blockdev_find reports the SyncSource side as degraded while the resync runs (is_degraded = not Connected)', async () => {
    // docs/behaviour.md §11.1 "DRBD states", §11.4 "Disk consistency": is_connected means exactly Connected;
    // a device in the resync set is degraded.
    const s = await sim({ syncRate: 1 });
    await s.inject('web1', 'node2', 'degraded');
    await s.node('node2').drbdAttachNet(s.inst('web1', 'node2'), false);
    expect(s.disk('web1', 'node1')).toMatchObject({ connection: 'SyncSource', disk: 'UpToDate' });
    const found = await s.node('node1').blockdevFind(s.inst('web1', 'node1'), 0);
    expect(found?.syncPercent).not.toBeNull();
    expect(found?.isDegraded).toBe(true);
  });
});

// ---- migration ----------------------------------------------------------------------------------

/** Migration tests run simulated time 10× real time and move it on explicitly with `jump`. */
const MIG = { timeFactor: 10 };

describe('accept_instance', () => {
  test('fails with "Wrong medium type" while the target DRBD device is Secondary', async () => {
    const s = await sim(MIG);
    const info = await s.node('node1').migrationInfo(s.inst('web1', 'node1'));
    await expect(s.node('node2').acceptInstance(s.inst('web1', 'node2'), info, SIP.node2!)).rejects.toThrow(/Wrong medium type/);
    expect(s.proc('web1', 'node2')).toBeUndefined();
  });

  test('starts an incoming process on the target once its DRBD device is Primary, and is idempotent', async () => {
    const s = await sim(MIG);
    await s.prepareTarget('web1', 'node1', 'node2');
    const { info, target } = await s.accept('web1', 'node1', 'node2');
    expect(target.port).toBe(8102);
    expect(s.proc('web1', 'node2')).toMatchObject({ state: 'incoming', incoming: { port: 8102 }, memory: 1024, runtime: info });

    const again = await s.node('node2').acceptInstance(s.inst('web1', 'node2'), info, SIP.node2!);
    expect(again).toEqual({ port: 8102 });
    expect(Object.keys(s.state().nodes.node2!.processes).sort()).toEqual(['files1', 'web1', 'web2']);
  });

  test('picks distinct ports for two incoming instances on one node', async () => {
    const s = await sim(MIG);
    await s.prepareTarget('web2', 'node2', 'node3');
    await s.prepareTarget('db1', 'node1', 'node3');
    const a = await s.accept('web2', 'node2', 'node3');
    const b = await s.accept('db1', 'node1', 'node3');
    expect([a.target.port, b.target.port]).toEqual([8102, 8103]);
    expect(s.proc('web2', 'node3')?.incoming).toEqual({ port: 8102 });
    expect(s.proc('db1', 'node3')?.incoming).toEqual({ port: 8103 });
  });
});

describe('instance_migrate and instance_get_migration_status', () => {
  test('a live migration is active with growing transferred RAM, then completes: source postmigrate, destination running', async () => {
    const s = await sim(MIG);
    await s.prepareTarget('web1', 'node1', 'node2');
    const { target } = await s.accept('web1', 'node1', 'node2');
    await s.node('node1').instanceMigrate(s.inst('web1', 'node1'), target, true);

    const st1 = await s.node('node1').instanceGetMigrationStatus(s.inst('web1', 'node1'));
    expect(st1).toMatchObject({ status: 'active', totalRam: 1024 });
    expect(s.detail('web1').processes).toEqual({
      node1: { state: 'running', migration: 'active to node2' },
      node2: { state: 'incoming' },
    });

    await s.jump(5_000); // 5 s at 32 MiB/s
    const st2 = await s.node('node1').instanceGetMigrationStatus(s.inst('web1', 'node1'));
    expect(st2.status).toBe('active');
    expect(st2.transferredRam! - st1.transferredRam!).toBeGreaterThanOrEqual(159);
    expect(st2.transferredRam!).toBeLessThan(1024);

    await s.jump(60_000); // 1024 MiB at 32 − 2 MiB/s take ~34 s
    const st3 = await s.node('node1').instanceGetMigrationStatus(s.inst('web1', 'node1'));
    expect(st3).toMatchObject({ status: 'completed', totalRam: 1024 });
    expect(st3.transferredRam!).toBeGreaterThanOrEqual(1024);
    expect(s.detail('web1').processes).toEqual({
      node1: { state: 'paused', paused: 'postmigrate', migration: 'completed to node2' },
      node2: { state: 'running' },
    });
  });

  test('a non-live migration pauses the source at once and leaves the destination paused', async () => {
    const s = await sim(MIG);
    await s.prepareTarget('web1', 'node1', 'node2');
    const { target } = await s.accept('web1', 'node1', 'node2');
    await s.node('node1').instanceMigrate(s.inst('web1', 'node1'), target, false);
    expect(s.detail('web1').processes.node1).toEqual({ state: 'paused', paused: 'stop', migration: 'active to node2' });

    await s.jump(60_000); // 1024 MiB at 32 MiB/s
    expect(await s.node('node1').instanceGetMigrationStatus(s.inst('web1', 'node1'))).toMatchObject({ status: 'completed' });
    expect(s.detail('web1').processes).toEqual({
      node1: { state: 'paused', paused: 'postmigrate', migration: 'completed to node2' },
      node2: { state: 'paused', paused: 'stop' },
    });
  });

  test('a guest dirtying RAM faster than the bandwidth never lets the live migration complete', async () => {
    const s = await sim({ ...MIG, guestDirtyRate: 40 }); // > 32 MiB/s migration bandwidth
    await s.prepareTarget('web1', 'node1', 'node2');
    const { target } = await s.accept('web1', 'node1', 'node2');
    await s.node('node1').instanceMigrate(s.inst('web1', 'node1'), target, true);
    await s.jump(3_600_000);
    const st = await s.node('node1').instanceGetMigrationStatus(s.inst('web1', 'node1'));
    expect(st.status).toBe('active');
    expect(st.transferredRam!).toBeGreaterThan(100 * 1024); // an hour at 32 MiB/s, far beyond the RAM size
    expect(s.detail('web1').processes).toEqual({
      node1: { state: 'running', migration: 'active to node2' },
      node2: { state: 'incoming' },
    });
  });

  test('migrating to a node without an incoming process fails with "Connection refused"', async () => {
    const s = await sim(MIG);
    await s.node('node1').instanceMigrate(s.inst('web1', 'node1'), { node: 'node2', ip: SIP.node2!, port: 8102 }, true);
    const st = await s.node('node1').instanceGetMigrationStatus(s.inst('web1', 'node1'));
    expect(st.status).toBe('failed');
    expect(st.error).toMatch(/Connection refused/);
    expect(st.transferredRam).toBe(0);
    expect(s.detail('web1').processes).toEqual({ node1: { state: 'running', migration: 'failed to node2' } });
  });

  test('killing the destination mid-transfer fails the migration and keeps the source running', async () => {
    const s = await sim(MIG);
    await s.prepareTarget('web1', 'node1', 'node2');
    const { target } = await s.accept('web1', 'node1', 'node2');
    await s.node('node1').instanceMigrate(s.inst('web1', 'node1'), target, true);
    await s.jump(5_000);
    await s.inject('web1', 'node2', 'stopped');
    const st = await s.node('node1').instanceGetMigrationStatus(s.inst('web1', 'node1'));
    expect(st.status).toBe('failed');
    expect(st.error).toMatch(/Connection reset by peer/);
    expect(s.detail('web1').processes).toEqual({ node1: { state: 'running', migration: 'failed to node2' } });
  });

  test('instance_migrate called twice for the same target re-attaches to the running migration', async () => {
    const s = await sim(MIG);
    await s.prepareTarget('web1', 'node1', 'node2');
    const { target } = await s.accept('web1', 'node1', 'node2');
    await s.node('node1').instanceMigrate(s.inst('web1', 'node1'), target, true);
    const first = s.proc('web1', 'node1')!.migration!;
    await s.jump(5_000);
    await s.node('node1').instanceMigrate(s.inst('web1', 'node1'), target, true);
    const second = s.proc('web1', 'node1')!.migration!;
    expect(second.startedAt).toBe(first.startedAt);
    expect(second.status).toBe('active');
    // another destination is refused while this one runs
    await expect(s.node('node1').instanceMigrate(s.inst('web1', 'node1'), { ...target, port: 9999 }, true)).rejects.toThrow(
      /previous migration/,
    );
    expect(s.proc('web1', 'node1')!.migration!.port).toBe(target.port);
  });

  test('instance_get_migration_status reports "none" when no migration was started', async () => {
    const s = await sim(MIG);
    expect(await s.node('node1').instanceGetMigrationStatus(s.inst('web1', 'node1'))).toEqual({ status: 'none' });
  });
});

describe('finalize migration', () => {
  async function migrated(live: boolean, complete: boolean) {
    const s = await sim(MIG);
    await s.prepareTarget('web1', 'node1', 'node2');
    const { info, target } = await s.accept('web1', 'node1', 'node2');
    await s.node('node1').instanceMigrate(s.inst('web1', 'node1'), target, live);
    if (complete) await s.jump(60_000);
    return { s, info };
  }

  test('finalize dst success after a non-live migration resumes the destination ("cont") and stores the runtime', async () => {
    const { s, info } = await migrated(false, true);
    expect(s.detail('web1').processes.node2).toEqual({ state: 'paused', paused: 'stop' });
    await s.node('node2').instanceFinalizeMigrationDst(s.inst('web1', 'node2'), info, true);
    expect(s.detail('web1').processes.node2).toEqual({ state: 'running' });
    expect(s.proc('web1', 'node2')!.runtime).toBe(info);
  });

  test('finalize dst success fails while the destination is still incoming', async () => {
    const { s, info } = await migrated(true, false);
    await expect(s.node('node2').instanceFinalizeMigrationDst(s.inst('web1', 'node2'), info, true)).rejects.toThrow(
      /did not become running/,
    );
    expect(s.detail('web1').processes.node2).toEqual({ state: 'incoming' });
  });

  test('finalize src success before completion fails and leaves the source running and migrating', async () => {
    const { s } = await migrated(true, false);
    await expect(s.node('node1').instanceFinalizeMigrationSrc(s.inst('web1', 'node1'), true, true)).rejects.toThrow(
      /migration is active, refusing to stop the source/,
    );
    expect(s.detail('web1').processes.node1).toEqual({ state: 'running', migration: 'active to node2' });
  });

  test('finalize src success after completion removes the source process and its links', async () => {
    const { s, info } = await migrated(true, true);
    await s.node('node2').instanceFinalizeMigrationDst(s.inst('web1', 'node2'), info, true);
    await s.node('node1').instanceFinalizeMigrationSrc(s.inst('web1', 'node1'), true, true);
    await s.node('node1').instanceFinalizeMigrationSrc(s.inst('web1', 'node1'), true, true); // idempotent
    const d = s.detail('web1');
    expect(d.processes).toEqual({ node2: { state: 'running' } });
    expect(d.links).toEqual(['node2']);
  });

  test('finalize src failure cancels an active migration and resumes a paused source', async () => {
    const { s } = await migrated(false, false);
    expect(s.detail('web1').processes.node1).toEqual({ state: 'paused', paused: 'stop', migration: 'active to node2' });
    await s.node('node1').instanceFinalizeMigrationSrc(s.inst('web1', 'node1'), false, false);
    expect(s.detail('web1').processes.node1).toEqual({ state: 'running' });
    expect(await s.node('node1').instanceGetMigrationStatus(s.inst('web1', 'node1'))).toEqual({ status: 'none' });
    // the transfer no longer runs: the destination never leaves incoming
    await s.jump(60_000);
    expect(s.detail('web1').processes.node2).toEqual({ state: 'incoming' });
  });

  test('finalize dst failure removes the incoming process and is idempotent', async () => {
    const { s, info } = await migrated(true, false);
    await s.node('node1').instanceFinalizeMigrationSrc(s.inst('web1', 'node1'), false, true);
    await s.node('node2').instanceFinalizeMigrationDst(s.inst('web1', 'node2'), info, false);
    await s.node('node2').instanceFinalizeMigrationDst(s.inst('web1', 'node2'), info, false);
    expect(s.detail('web1').processes).toEqual({ node1: { state: 'running' } });
    expect(await s.node('node2').instanceList()).toEqual(['files1', 'web2']);
    const dst = s.state().log.filter((e) => e.rpc === 'instance_finalize_migration_dst');
    expect(dst.map((e) => `${e.detail}:${e.outcome}`)).toEqual(['failure:ok', 'failure:ok']);
  });

  test('after a completed transfer, finalize dst failure refuses to stop the destination: it is the current copy', async () => {
    for (const live of [true, false]) {
      const { s, info } = await migrated(live, true);
      const before = s.detail('web1').processes.node2;
      await expect(s.node('node2').instanceFinalizeMigrationDst(s.inst('web1', 'node2'), info, false)).rejects.toThrow(
        `instance web1 runs here (${live ? 'running' : 'paused'}) and may be the only current copy, refusing to stop it: ` +
          "run 'ganeti-temporal instance migrate --cleanup web1'",
      );
      expect(s.detail('web1').processes.node2).toEqual(before);
    }
  });

  test('after a completed transfer, finalize src failure refuses to resume the stale source', async () => {
    for (const live of [true, false]) {
      const { s } = await migrated(live, true);
      await expect(s.node('node1').instanceFinalizeMigrationSrc(s.inst('web1', 'node1'), false, live)).rejects.toThrow(
        "the memory transfer of web1 completed, refusing to resume this stale copy: run 'ganeti-temporal instance migrate --cleanup web1'",
      );
      expect(s.detail('web1').processes.node1).toMatchObject({ state: 'paused', paused: 'postmigrate' });
      expect(await s.node('node1').instanceGetMigrationStatus(s.inst('web1', 'node1'))).toMatchObject({ status: 'completed' });
    }
  });
});

// ---- node and instance information, RPC log -----------------------------------------------------

describe('node and instance information', () => {
  test('node_info free memory accounts the running processes and dom0', async () => {
    const s = await sim(MIG);
    // node1 runs web1 (1024) and db1 (2048); dom0 1024
    expect(await s.node('node1').nodeInfo()).toEqual({
      memoryTotal: 16384,
      memoryDom0: 1024,
      memoryFree: 16384 - 1024 - 3072,
      hvVersion: '7.2.22',
    });
    expect((await s.node('node3').nodeInfo()).hvVersion).toBe('7.2.19');

    await s.set({ dom0Memory: 2048 });
    expect((await s.node('node1').nodeInfo()).memoryFree).toBe(16384 - 2048 - 3072);

    // an incoming process counts too (node2 runs web2 and files1)
    await s.prepareTarget('web1', 'node1', 'node2');
    await s.accept('web1', 'node1', 'node2');
    expect((await s.node('node2').nodeInfo()).memoryFree).toBe(16384 - 2048 - 3072);
  });

  test('instance_list lists the processes on the node, sorted', async () => {
    const s = await sim();
    expect(await s.node('node1').instanceList()).toEqual(['db1', 'web1']);
    expect(await s.node('node2').instanceList()).toEqual(['files1', 'web2']);
    expect(await s.node('node3').instanceList()).toEqual(['web3']);
    await s.inject('web1', 'node1', 'stopped');
    expect(await s.node('node1').instanceList()).toEqual(['db1']);
  });

  test('instance_migratable passes for a running instance and fails "is not running" once it is stopped', async () => {
    const s = await sim();
    await s.node('node1').instanceMigratable(s.inst('web1', 'node1'));
    await s.inject('web1', 'node1', 'stopped');
    await expect(s.node('node1').instanceMigratable(s.inst('web1', 'node1'))).rejects.toThrow('Instance web1 is not running');
    expect(
      s
        .state()
        .log.slice(-2)
        .map((e) => e.outcome),
    ).toEqual(['ok', 'error']);
  });

  test('bridges_exist reports the missing bridges', async () => {
    const s = await sim();
    await s.node('node1').bridgesExist(['br0']);
    await expect(s.node('node1').bridgesExist(['br0', 'br9', 'br7'])).rejects.toThrow('Missing bridges br9, br7');
    expect(s.state().log.slice(-2)).toEqual([
      expect.objectContaining({ rpc: 'bridges_exist', detail: 'br0', outcome: 'ok' }),
      expect.objectContaining({ rpc: 'bridges_exist', detail: 'br0,br9,br7', outcome: 'error', error: 'Missing bridges br9, br7' }),
    ]);
  });

  test('the RPC log records every call in order with its node, instance and outcome', async () => {
    const s = await sim();
    await s.node('node1').nodeInfo();
    await s.node('node2').blockdevClose(s.inst('web1', 'node2'));
    await s
      .node('node1')
      .blockdevClose(s.inst('web1', 'node1'))
      .catch(() => undefined);
    await s.node('node3').instanceList();
    const log = s.state().log;
    expect(log.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(log.map(({ node, rpc, instance, outcome }) => ({ node, rpc, instance, outcome }))).toEqual([
      { node: 'node1', rpc: 'node_info', instance: undefined, outcome: 'ok' },
      { node: 'node2', rpc: 'blockdev_close', instance: 'web1', outcome: 'ok' },
      { node: 'node1', rpc: 'blockdev_close', instance: 'web1', outcome: 'error' },
      { node: 'node3', rpc: 'instance_list', instance: undefined, outcome: 'ok' },
    ]);
    expect(log[2]!.error).toMatch(HELD_OPEN);
    expect(s.state().logSeq).toBe(4);
  });
});

// ---- fault injection ----------------------------------------------------------------------------

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof NodeRpcError ? (e.transient ? 'transient' : 'permanent') : `other: ${(e as Error).message}`;
  }
}

describe('fault injection (withFaults)', () => {
  test('a transient fault fails K calls with a transient NodeRpcError, then lets calls through', async () => {
    const s = await sim();
    await s.addFault({ rpc: 'instance_list', mode: 'transient', times: 2 });
    const rpc = s.faulty('node1');
    const err = await rpc.instanceList().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeRpcError);
    expect((err as NodeRpcError).transient).toBe(true);
    expect((err as NodeRpcError).message).toBe('injected transient fault in instance_list on node1');
    expect(await outcome(rpc.instanceList())).toBe('transient');
    expect(await rpc.instanceList()).toEqual(['db1', 'web1']);
    expect(s.state().faults[0]).toMatchObject({ hits: 2, remaining: 0 });
    // the faulted calls never reached the node
    expect(s.state().log.map((e) => `${e.rpc}:${e.outcome}`)).toEqual(['instance_list:fault', 'instance_list:fault', 'instance_list:ok']);
  });

  test('a permanent fault fails every call with a non-transient NodeRpcError', async () => {
    const s = await sim();
    await s.addFault({ rpc: 'blockdev_close', mode: 'permanent' });
    const rpc = s.faulty('node2');
    const err = await rpc.blockdevClose(s.inst('web1', 'node2')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeRpcError);
    expect((err as NodeRpcError).transient).toBe(false);
    expect((err as NodeRpcError).message).toBe('injected failure in blockdev_close on node2');
    for (let i = 0; i < 3; i++) expect(await outcome(rpc.blockdevClose(s.inst('web1', 'node2')))).toBe('permanent');
    expect(s.state().faults[0]).toMatchObject({ hits: 4, remaining: null });
    const log = s.state().log;
    expect(log).toHaveLength(4);
    expect(log.every((e) => e.outcome === 'fault' && e.instance === 'web1' && e.detail === 'permanent fault #1')).toBe(true);
    // other RPCs are unaffected
    expect(await rpc.instanceList()).toEqual(['files1', 'web2']);
  });

  test('skip lets the first N calls through before the fault applies', async () => {
    const s = await sim();
    await s.addFault({ rpc: 'node_info', mode: 'permanent', skip: 2, times: 1 });
    const rpc = s.faulty('node1');
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await outcome(rpc.nodeInfo()));
    expect(outcomes).toEqual(['ok', 'ok', 'permanent', 'ok']);
    expect(s.state().faults[0]).toMatchObject({ skip: 0, hits: 1, remaining: 0 });
    expect(s.state().log.map((e) => e.outcome)).toEqual(['ok', 'ok', 'fault', 'ok']);
  });

  test('a fault addressed to one node leaves the other nodes alone', async () => {
    const s = await sim();
    await s.addFault({ rpc: 'instance_list', node: 'node2', mode: 'permanent' });
    expect(await s.faulty('node1').instanceList()).toEqual(['db1', 'web1']);
    expect(await s.faulty('node3').instanceList()).toEqual(['web3']);
    expect(await outcome(s.faulty('node2').instanceList())).toBe('permanent');
    expect(s.state().faults[0]!.hits).toBe(1);
    expect(s.state().log.filter((e) => e.outcome === 'fault')).toEqual([
      expect.objectContaining({ node: 'node2', rpc: 'instance_list', detail: 'permanent fault #1' }),
    ]);
  });

  test('a hanging call waits on the injected hang function and never reaches the node', async () => {
    const s = await sim();
    await s.addFault({ rpc: 'instance_shutdown', mode: 'hang' });
    const rpc = s.faulty('node1', { hang: () => Promise.reject(new Error('hung')) });
    await expect(rpc.instanceShutdown(s.inst('web1', 'node1'), 120, 'test')).rejects.toThrow('hung');
    expect(s.proc('web1', 'node1')?.state).toBe('running');
    expect(s.state().faults[0]!.hits).toBe(1);
    expect(s.state().log).toEqual([
      expect.objectContaining({ rpc: 'instance_shutdown', instance: 'web1', outcome: 'fault', detail: 'hang fault #1' }),
    ]);
  });

  test('a hang-after call takes effect on the node, then waits on the hang function; repeated, it changes nothing more', async () => {
    const s = await sim();
    await s.addFault({ rpc: 'instance_shutdown', mode: 'hang-after', times: 1 });
    const rpc = s.faulty('node1', { hang: () => Promise.reject(new Error('hung')) });
    await expect(rpc.instanceShutdown(s.inst('web1', 'node1'), 120, 'test')).rejects.toThrow('hung');
    expect(s.proc('web1', 'node1')).toBeUndefined();
    await rpc.instanceShutdown(s.inst('web1', 'node1'), 120, 'test'); // the retry re-attaches
    expect(s.state().log.map((e) => `${e.rpc}:${e.outcome}`)).toEqual([
      'instance_shutdown:fault',
      'instance_shutdown:ok',
      'instance_shutdown:ok',
    ]);
  });

  test('the wrapper passes the node name and unfaulted calls straight through', async () => {
    const s = await sim();
    const rpc = s.faulty('node3');
    expect(rpc.node).toBe('node3');
    await rpc.instanceShutdown(s.inst('web3', 'node3'), 120, 'test');
    expect(await rpc.instanceList()).toEqual([]);
    expect(s.state().log.map((e) => `${e.rpc}:${e.outcome}`)).toEqual(['instance_shutdown:ok', 'instance_list:ok']);
  });
});
