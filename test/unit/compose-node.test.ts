/**
 * A node's RPC surface is its hypervisor port and its storage port composed (domain/compose-node.ts,
 * worker/backends.ts): each RPC runs on the side that owns it, the hypervisor's own accessors stay
 * reachable; and the simulated DRBD's "held open" check asks the hypervisor beside it, not a
 * process table.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { rpcInstanceFor } from '../../domain/instance.js';
import type { DiskHolders } from '../../domain/ports.js';
import { QemuHypervisor } from '../../adapters/qemu/node.js';
import { buildHardware, defaultClusterConfig } from '../../adapters/sim/cluster.js';
import { SimHardware } from '../../adapters/sim/hardware.js';
import { SimHypervisor } from '../../adapters/sim/hypervisor.js';
import { SimStorage } from '../../adapters/sim/storage.js';
import { simNode } from '../../worker/backends.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'gt-compose-'));
  dirs.push(d);
  return d;
};

describe('composeNode', () => {
  test('the simulated node is the simulated hypervisor and DRBD over one document', async () => {
    const hw = SimHardware.forHome(tmp());
    await hw.replace(buildHardware(defaultClusterConfig('test')));
    const node = simNode(hw, 'node1');
    expect(await node.instanceList()).toContain('web1');
    expect(node).toBeInstanceOf(SimHypervisor);
  });
});

describe('the simulated DRBD asks the hypervisor who holds a disk open', () => {
  async function setup(held: boolean) {
    const hw = SimHardware.forHome(tmp());
    const cfg = defaultClusterConfig('test');
    await hw.replace(buildHardware(cfg));
    const asked: string[] = [];
    const holders: DiskHolders = {
      withHolders: async (instance, step) => {
        asked.push(`enter ${instance}`);
        try {
          return await step(() => {
            asked.push(`held? ${instance}`);
            return held;
          });
        } finally {
          asked.push(`leave ${instance}`);
        }
      },
    };
    const storage = new SimStorage(hw, 'node1', holders);
    const web1 = rpcInstanceFor(cfg, cfg.instances.web1!, 'node1');
    return { hw, storage, web1, asked };
  }

  test('held by the hypervisor: the Primary is not demoted, whatever the process table says', async () => {
    const { hw, storage, web1, asked } = await setup(true);
    await hw.mutate((s) => void delete s.nodes.node1!.processes.web1); // the table knows no process
    await expect(storage.blockdevClose(web1)).rejects.toThrow(/Device is held open by someone/);
    await expect(storage.blockdevShutdown(web1)).rejects.toThrow(/Device is held open by someone/);
    expect(asked).toEqual(['enter web1', 'held? web1', 'leave web1', 'enter web1', 'held? web1', 'leave web1']);
    const minor = String(web1.disks[0]!.drbd!.minor);
    expect(hw.read().state.nodes.node1!.drbd[minor]).toMatchObject({ role: 'Primary', attached: true });
  });

  test('not held by the hypervisor: the device is demoted, whatever the process table says', async () => {
    const { hw, storage, web1 } = await setup(false);
    expect(hw.read().state.nodes.node1!.processes.web1).toBeDefined(); // the table still lists the process
    await storage.blockdevClose(web1);
    const minor = String(web1.disks[0]!.drbd!.minor);
    expect(hw.read().state.nodes.node1!.drbd[minor]).toMatchObject({ role: 'Secondary' });
  });

  test('a QEMU hypervisor answers from its own state files: no process there, nothing held, reported gone', async () => {
    const { hw, web1 } = await setup(false);
    const reports: unknown[] = [];
    const qemu = new QemuHypervisor(
      { home: tmp(), node: 'node1', kernel: null, watchMs: 0 },
      {
        host: { exists: () => true, facts: () => null },
        storage: { openRefusal: () => Promise.resolve(null), hypervisorObserved: (r) => Promise.resolve(void reports.push(r)) },
      },
    );
    const storage = new SimStorage(hw, 'node1', qemu);
    await storage.blockdevClose(web1); // the document's process table lists web1; no QEMU runs it
    expect(reports).toEqual([{ edits: [{ kind: 'process', instance: 'web1', process: null }], unlessUnchanged: true }]);
    qemu.close();
  });

  test('the QEMU watch reports, from its own state files, that no process it has no files for runs', async () => {
    const reports: unknown[] = [];
    const facts = { powered: true, memoryTotal: 4096, dom0Memory: 512, secondaryIp: '127.0.0.1', migrationBasePort: 8102 };
    const qemu = new QemuHypervisor(
      { home: tmp(), node: 'node1', kernel: null, watchMs: 10 },
      {
        host: { exists: () => true, facts: () => facts },
        storage: { openRefusal: () => Promise.resolve(null), hypervisorObserved: (r) => Promise.resolve(void reports.push(r)) },
      },
    );
    try {
      await expect.poll(() => reports.length).toBeGreaterThan(0);
      expect(reports[0]).toEqual({ edits: [{ kind: 'keep-only', instances: [] }], unlessUnchanged: true });
    } finally {
      qemu.close();
    }
  });
});
