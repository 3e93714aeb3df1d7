/**
 * A simulated cluster in a temporary directory: the default three-node cluster with fast timing
 * and the test process's payload key, plus helpers to read the configuration and the hardware truth.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildHardware,
  defaultClusterConfig,
  inject,
  instanceHwDetail,
  type InjectState,
  type InstanceHwDetail,
} from '../../adapters/sim/cluster.js';
import { addFault, type FaultSpec } from '../../adapters/sim/faults.js';
import { SimHardware } from '../../adapters/sim/hardware.js';
import type { SimLogEntry, SimParams, SimState } from '../../adapters/sim/state.js';
import { openSqliteStore } from '../../adapters/store/open.js';
import type { SqlConfigStore } from '../../adapters/store/sql-store.js';
import type { HookPath, HookPhase } from '../../domain/hook-env.js';
import { TimingSchema, type ClusterConfig, type Instance, type Timing } from '../../domain/types.js';
import { simHooksDir } from '../../worker/node-agent.js';
import { installTestKey } from './codec.js';

/** Ganeti's timings shrunk for tests (hardware time runs `timeFactor` times faster too). */
export const FAST_TIMING: Timing = TimingSchema.parse({
  rpcTimeouts: { urgent: 10, normal: 20, slow: 30 },
  heartbeatTimeoutSec: 3,
  scheduleToStartSec: 60,
  retryInitialIntervalMs: 100,
  retryMaximumIntervalMs: 400,
  retryMaximumAttempts: 3,
  migrationPollMs: 50,
  migrationProgressMs: 150,
  syncPollMs: 100,
});

export const FAST_SIM: Partial<SimParams> = { timeFactor: 50 };

let counter = 0;

export interface TestClusterOptions {
  timing?: Partial<Timing>;
  sim?: Partial<SimParams>;
  /** The configuration to start from (default: the three-node demo cluster). */
  base?: (name: string) => ClusterConfig;
  /** Change the configuration before the hardware is built from it. */
  configure?: (cfg: ClusterConfig) => void;
}

export class TestCluster {
  readonly config: SqlConfigStore;
  readonly hw: SimHardware;
  constructor(
    readonly name: string,
    readonly home: string,
  ) {
    this.config = openSqliteStore(home);
    this.hw = SimHardware.forHome(home);
  }

  cfg(): ClusterConfig {
    return this.config.readSync();
  }

  instance(name: string): Instance {
    const i = this.cfg().instances[name];
    if (!i) throw new Error(`no instance ${name}`);
    return i;
  }

  /** The hardware truth for an instance, with the configuration as it is now. */
  status(name: string): InstanceHwDetail {
    const { state, now } = this.hw.read();
    return instanceHwDetail(state, now, this.instance(name));
  }

  state(): SimState {
    return this.hw.read().state;
  }

  log(filter: Partial<Pick<SimLogEntry, 'rpc' | 'node' | 'instance' | 'outcome'>> = {}): SimLogEntry[] {
    return this.state().log.filter((e) => Object.entries(filter).every(([k, v]) => e[k as keyof SimLogEntry] === v));
  }

  /** "rpc@node" for every successful RPC on an instance, in order. */
  calls(instance: string): string[] {
    return this.log({ instance, outcome: 'ok' }).map((e) => `${e.rpc}@${e.node}${e.detail ? `(${e.detail})` : ''}`);
  }

  async addFault(spec: FaultSpec): Promise<void> {
    await this.hw.mutate((s) => addFault(s, spec));
  }

  async clearFaults(): Promise<void> {
    await this.hw.mutate((s) => void (s.faults = []));
  }

  async inject(instance: string, node: string, what: InjectState): Promise<void> {
    const cfg = this.cfg();
    await this.hw.mutate((s, now) => inject(s, now, cfg, this.instance(instance), node, what));
  }

  async setSim(params: Partial<SimParams>): Promise<void> {
    await this.hw.mutate((s) => Object.assign(s.params, params));
  }

  async setTiming(timing: Partial<Timing>): Promise<void> {
    await this.config.update((c) => void Object.assign(c.cluster.timing, timing));
  }

  /** A hook script `<path>-<phase>.d/<name>` on `node` (a shell body, or a whole script with its own `#!`). */
  hook(node: string, path: HookPath, phase: HookPhase, name: string, body: string, mode = 0o755): string {
    const dir = join(simHooksDir(this.home, node), `${path}-${phase}.d`);
    mkdirSync(dir, { recursive: true });
    const f = join(dir, name);
    writeFileSync(f, body.startsWith('#!') ? body : `#!/bin/sh\n${body}\n`);
    chmodSync(f, mode);
    return f;
  }

  /**
   * A hook body that blocks until `open()` is called: holds an operation in a phase for as long as a
   * test needs, however slow the machine (a fixed `sleep` can end before a poll sees the phase).
   */
  gate(name: string): { body: string; open: () => void } {
    const f = join(this.home, `gate-${name}`);
    return { body: `while [ ! -e '${f}' ]; do sleep 0.05; done`, open: () => writeFileSync(f, '') };
  }

  remove(): void {
    void this.config.close();
    rmSync(this.home, { recursive: true, force: true });
  }
}

export async function createTestCluster(opts: TestClusterOptions = {}): Promise<TestCluster> {
  const name = `t${process.pid}-${++counter}`;
  const home = mkdtempSync(join(tmpdir(), 'ganeti-temporal-'));
  const cfg = opts.base ? opts.base(name) : defaultClusterConfig(name);
  cfg.cluster.timing = { ...FAST_TIMING, ...opts.timing };
  opts.configure?.(cfg);
  const c = new TestCluster(name, home);
  installTestKey(home);
  await c.config.initialise(cfg);
  await c.hw.replace(buildHardware(c.config.readSync(), { ...FAST_SIM, ...opts.sim }));
  return c;
}
