/**
 * Fixture for the real-hypervisor tests: one dev server per file (as the shared harness), the
 * heartbeat guest assembled from source once per file, and per test a fresh cluster on loopback
 * secondary IPs whose node agents run the qemu backend (tcg, small memory). The instances a test
 * names are booted for real before the workers start; everything else is removed from the cluster.
 * After each test every QEMU process whose command line mentions the cluster's directory is killed
 * (by pid), whatever the test left behind.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { rpcInstanceFor, type RpcInstance } from '../../domain/instance.js';
import { buildGuest, readHeartbeat, type GuestOptions } from '../../adapters/qemu/guest.js';
import type { QemuMeta } from '../../adapters/qemu/files.js';
import type { QemuNode } from '../../adapters/qemu/node.js';
import type { QemuNodeOptions } from '../../adapters/qemu/frame.js';
import { isOurQemu, killPid, qemuProcessesMentioning } from '../../adapters/qemu/process.js';
import { withQmp } from '../../adapters/qemu/qmp.js';
import { qmpArg } from '../../adapters/qemu/runtime.js';
import type { ClusterConfig } from '../../domain/types.js';
import { qemuBackend, qemuNode } from '../../worker/backends.js';
import { createTestCluster, type TestCluster, type TestClusterOptions } from '../helpers/cluster.js';
import { ensureCommand } from '../helpers/system-packages.js';
import { useServer, type Workers } from '../helpers/temporal.js';

/** The test guest: idle between 100 Hz ticks, 32 MiB of non-zero RAM that every migration must send. */
export const TEST_GUEST: GuestOptions = { fillMb: 32, hlt: true, hz: 100 };
export const TEST_MEMORY = 128;

/**
 * A guest that dirties memory faster than `DIRTY_BANDWIDTH` lets a migration send it: every ms it
 * writes the next 2 pages of a 2 MiB working set (~8 MiB/s at 1000 Hz), so each 0.5 s pass over the
 * working set finds all of it dirty again and a precopy migration at 4 MiB/s never converges; a
 * vCPU throttled by auto-converge writes fewer pages, and a stopped or post-copy source none.
 */
export const DIRTY_GUEST: GuestOptions = { fillMb: 0, wsMb: 2, walkPages: 2, hlt: true, hz: 1000 };
/** migration_bandwidth (MiB/s) at which DIRTY_GUEST does not converge. */
export const DIRTY_BANDWIDTH = 4;

export interface QemuClusterOptions extends TestClusterOptions {
  /** Instances kept in the cluster and booted for real on their primary (default: web1). */
  instances?: string[];
  /** hvparams for every kept instance (e.g. a slow migration_bandwidth). */
  hvparams?: ClusterConfig['instances'][string]['hvparams'];
}

/** A cluster whose node agents drive real QEMU, with direct access to each node's driver. */
export class QemuCluster {
  /** Drivers for looking at the real state (no watch; the node agents have their own). */
  private readonly drivers = new Map<string, QemuNode>();
  constructor(
    readonly c: TestCluster,
    readonly w: Workers,
    readonly kernel: string,
  ) {}

  driver(node: string): QemuNode {
    let d = this.drivers.get(node);
    if (!d) {
      d = qemuNode({ home: this.c.home, node, kernel: this.kernel, watchMs: 0 });
      this.drivers.set(node, d);
    }
    return d;
  }

  ri(instance: string, node: string): RpcInstance {
    const cfg = this.c.cfg();
    return rpcInstanceFor(cfg, cfg.instances[instance]!, node);
  }

  meta(node: string, instance: string): QemuMeta | null {
    return this.driver(node).readMeta(instance);
  }

  /** The pid of the instance's live QEMU on `node`, or null. */
  pid(node: string, instance: string): number | null {
    const m = this.meta(node, instance);
    return m?.pid && isOurQemu(m.pid, qmpArg(m.qmp), m.startTime) ? m.pid : null;
  }

  /** QEMU's run state on `node` (query-status). */
  async runState(node: string, instance: string): Promise<string> {
    return withQmp(this.driver(node).qmpPath(instance), async (q) => (await q.execute<{ status: string }>('query-status')).status);
  }

  async heartbeat(node: string, instance: string): Promise<number> {
    const hb = await readHeartbeat(this.driver(node).qmpPath(instance));
    if (!hb.booted) throw new Error(`the guest of ${instance} on ${node} has not booted`);
    return hb.counter;
  }

  /** The QMP commands the driver sent to the instance's QEMU on `node` (`stop`, `migrate`, …). */
  journal(node: string, instance: string): string[] {
    try {
      return readFileSync(this.driver(node).journalPath(instance), 'utf8')
        .split('\n')
        .filter((l) => l.includes(' -> '))
        .map((l) => l.slice(l.indexOf(' -> ') + 4));
    } catch {
      return [];
    }
  }

  /** The guest's last heartbeat values on `node`, sampled every `everyMs` until stopped. */
  sampleHeartbeat(node: string, instance: string, everyMs = 15): { stop: () => Promise<number | null> } {
    let last: number | null = null;
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          last = await this.heartbeat(node, instance);
        } catch {
          // the process is paused in stop-and-copy, or gone: keep the last value read
        }
        await sleep(everyMs);
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return last;
      },
    };
  }
}

/** Every QEMU started for this cluster, found by its directory on the command line, killed by pid. */
export async function killClusterQemus(home: string): Promise<number> {
  const pids = qemuProcessesMentioning(home);
  for (const pid of pids) await killPid(pid);
  return pids.length;
}

/** `guest`: the guest every instance of this file's clusters boots (default TEST_GUEST). */
export function useQemuHarness(guest: GuestOptions = TEST_GUEST) {
  const server = useServer();
  let guestDir = '';
  let kernel = '';
  beforeAll(() => {
    ensureCommand('as', 'binutils');
    guestDir = mkdtempSync(join(tmpdir(), 'ganeti-temporal-guest-'));
    kernel = buildGuest(guestDir, guest); // assembled from adapters/qemu/guest/heartbeat.S now
  });
  afterAll(() => {
    rmSync(guestDir, { recursive: true, force: true });
  });
  return {
    env: server.env,
    kernel: () => kernel,
    async cluster(opts: QemuClusterOptions = {}): Promise<QemuCluster> {
      const keep = opts.instances ?? ['web1'];
      const c = await createTestCluster({
        ...opts,
        configure: (cfg) => {
          Object.values(cfg.nodes).forEach((n, i) => (n.secondaryIp = `127.0.1.${11 + i}`));
          for (const name of Object.keys(cfg.instances)) {
            if (!keep.includes(name)) {
              delete cfg.instances[name];
              continue;
            }
            const inst = cfg.instances[name]!;
            inst.beparams.maxmem = TEST_MEMORY;
            inst.beparams.minmem = TEST_MEMORY / 2;
            inst.hvparams = { ...inst.hvparams, ...opts.hvparams };
          }
          opts.configure?.(cfg);
        },
      });
      const w = server.workers(c, {
        rpcFor: (node) => qemuBackend({ home: c.home, node, accel: 'tcg', kernel, faultInjection: true }),
        afterStop: () => killClusterQemus(c.home),
      });
      const q = new QemuCluster(c, w, kernel);
      // Boot the kept instances for real (the hardware document already has their disks assembled).
      const cfg = c.cfg();
      for (const name of keep) {
        const inst = cfg.instances[name]!;
        if (inst.adminState === 'up') await q.driver(inst.primaryNode).instanceStart(q.ri(name, inst.primaryNode), 'test boot');
      }
      await w.all();
      return q;
    },
  };
}

/**
 * The driver-level fixture (no Temporal): `guest` assembled once per file; per test a cluster of web1
 * alone (128 MiB, `hvparams`) whose node i has the secondary IP 127.0.1.<ipBase+i>, and drivers on
 * it; every cluster's QEMU processes are killed and its drivers closed after the test.
 */
export function useDriverFixture(guest: GuestOptions, ipBase: number) {
  let guestDir = '';
  let kernel = '';
  beforeAll(() => {
    ensureCommand('as', 'binutils');
    guestDir = mkdtempSync(join(tmpdir(), 'ganeti-temporal-guest-'));
    kernel = buildGuest(guestDir, guest);
  });
  afterAll(() => rmSync(guestDir, { recursive: true, force: true }));
  const clusters: TestCluster[] = [];
  const drivers: QemuNode[] = [];
  afterEach(async () => {
    for (const d of drivers.splice(0)) d.close();
    for (const c of clusters.splice(0)) {
      await killClusterQemus(c.home);
      c.remove();
    }
  });
  return {
    kernel: () => kernel,
    async cluster(hvparams: ClusterConfig['instances'][string]['hvparams'] = {}): Promise<TestCluster> {
      const c = await createTestCluster({
        configure: (cfg) => {
          Object.values(cfg.nodes).forEach((n, i) => (n.secondaryIp = `127.0.1.${ipBase + i}`));
          for (const name of Object.keys(cfg.instances)) if (name !== 'web1') delete cfg.instances[name];
          const web1 = cfg.instances.web1!;
          web1.beparams = { ...web1.beparams, maxmem: TEST_MEMORY, minmem: TEST_MEMORY / 2 };
          web1.hvparams = { ...web1.hvparams, ...hvparams };
        },
      });
      clusters.push(c);
      return c;
    },
    driver(c: TestCluster, node: string, o: Partial<QemuNodeOptions> = {}): QemuNode {
      const d = qemuNode({ home: c.home, node, kernel, watchMs: 0, ...o });
      drivers.push(d);
      return d;
    },
  };
}
