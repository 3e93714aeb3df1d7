/**
 * A fresh cluster for one crash test or chaos run: the default three-node cluster under a new
 * GANETI_TEMPORAL_HOME in a temporary directory, with shrunk timing, the simulated hardware built
 * from it, and direct access to the configuration, the hardware truth and the fault table.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHardware, defaultClusterConfig, instanceHwDetail, type InstanceHwDetail } from '../adapters/sim/cluster.js';
import { QEMU_CLUSTER } from '../adapters/sim/seed.js';
import { addFault, type FaultSpec } from '../adapters/sim/faults.js';
import { SimHardware } from '../adapters/sim/hardware.js';
import type { SimLogEntry, SimParams } from '../adapters/sim/state.js';
import { openSqliteStore } from '../adapters/store/open.js';
import type { SqlConfigStore } from '../adapters/store/sql-store.js';
import { TimingSchema, type ClusterConfig, type Instance, type Timing } from '../domain/types.js';

/**
 * Timing for crash runs: Ganeti's RPC classes shrunk, a short RPC heartbeat timeout (a dead agent is
 * noticed after `rpcHeartbeatTimeoutSec`), and enough retries for a kill plus transient faults.
 */
export const CRASH_TIMING: Timing = TimingSchema.parse({
  rpcTimeouts: { urgent: 20, normal: 60, slow: 90 },
  heartbeatTimeoutSec: 5,
  rpcHeartbeatTimeoutSec: 5,
  scheduleToStartSec: 120,
  retryInitialIntervalMs: 200,
  retryMaximumIntervalMs: 1000,
  retryMaximumAttempts: 10,
  migrationPollMs: 100,
  migrationProgressMs: 1000,
  syncPollMs: 200,
  hookTimeoutSec: 30,
});

/** Simulated hardware 10× faster than real time (a 1 GiB live migration takes about 3 s). */
export const CRASH_SIM: Partial<SimParams> = { timeFactor: 10 };

export interface CrashClusterOptions {
  timing?: Partial<Timing>;
  sim?: Partial<SimParams>;
  /** The qemu variant of the default cluster (loopback secondary IPs, small guests, only `keep`). */
  qemu?: { keep: string[]; memory: number };
  configure?: (cfg: ClusterConfig) => void;
  /** Cluster name (default: from the directory). */
  name?: string;
}

export class CrashCluster {
  readonly config: SqlConfigStore;
  readonly hw: SimHardware;
  private initial: { cfg: ClusterConfig; sim: Partial<SimParams> } | undefined;
  constructor(
    readonly name: string,
    readonly home: string,
  ) {
    this.config = openSqliteStore(home);
    this.hw = SimHardware.forHome(home);
  }

  /** Writes the configuration and builds matching hardware (also: back to the start between tests). */
  async init(cfg: ClusterConfig, sim: Partial<SimParams>): Promise<void> {
    this.initial = { cfg: structuredClone(cfg), sim };
    await this.config.initialise(cfg);
    await this.hw.replace(buildHardware(this.cfg(), sim));
  }

  /** The cluster as it was created (configuration and hardware), faults cleared. */
  async reset(): Promise<void> {
    if (!this.initial) throw new Error('cluster not initialised');
    await this.init(this.initial.cfg, this.initial.sim);
  }

  cfg(): ClusterConfig {
    return this.config.readSync();
  }

  nodes(): string[] {
    return Object.keys(this.cfg().nodes).sort();
  }

  instance(name: string): Instance {
    const i = this.cfg().instances[name];
    if (!i) throw new Error(`no instance ${name}`);
    return i;
  }

  status(name: string): InstanceHwDetail {
    const { state, now } = this.hw.read();
    return instanceHwDetail(state, now, this.instance(name));
  }

  log(): SimLogEntry[] {
    return this.hw.read().state.log;
  }

  async addFault(spec: FaultSpec): Promise<void> {
    await this.hw.mutate((s) => addFault(s, spec));
  }

  async clearFaults(): Promise<void> {
    await this.hw.mutate((s) => void (s.faults = []));
  }

  remove(): void {
    rmSync(this.home, { recursive: true, force: true });
  }
}

export async function createCrashCluster(o: CrashClusterOptions = {}): Promise<CrashCluster> {
  const home = mkdtempSync(join(tmpdir(), 'ganeti-chaos-'));
  const name = o.name ?? `chaos-${home.slice(-6).replace(/[^a-zA-Z0-9]/g, 'x')}`;
  const cfg = defaultClusterConfig(name, o.qemu ? QEMU_CLUSTER : {});
  cfg.cluster.timing = { ...CRASH_TIMING, ...o.timing };
  if (o.qemu) {
    for (const n of Object.keys(cfg.instances)) {
      const inst = cfg.instances[n]!;
      if (!o.qemu.keep.includes(n)) delete cfg.instances[n];
      else inst.beparams = { ...inst.beparams, maxmem: o.qemu.memory, minmem: o.qemu.memory / 2 };
    }
  }
  o.configure?.(cfg);
  const c = new CrashCluster(name, home);
  await c.init(cfg, { ...CRASH_SIM, ...o.sim });
  return c;
}
