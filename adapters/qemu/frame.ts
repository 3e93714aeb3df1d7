/**
 * What every hypervisor RPC of the QEMU driver runs in: the node's settings and state files, the
 * power check (the node's facts from its `NodeHost`), serialisation per instance within the process,
 * observing a process over QMP, and reporting what was observed (with the RPC log entry) to the
 * storage side beside it (`StorageSide.hypervisorObserved`; the simulated storage records it). Also
 * the node's watch: a powered-off node loses its processes, processes that died are reported gone;
 * and the node's `DiskHolders` answer (a live process of its own holds the instance's disks open).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RpcInstance } from '../../domain/instance.js';
import { NodeRpcError, type MirrorEdit, type MirrorLogEntry, type NodeFacts, type NodeHost, type StorageSide } from '../../domain/ports.js';
import { LockTimeoutError } from '../common/json-file.js';
import { QemuFiles, type QemuMeta } from './files.js';
import { defaultKernel, launch, qmpFor, type LaunchSite } from './launch.js';
import { killPid } from './process.js';
import { QmpError, QmpUnavailable, type QmpClient } from './qmp.js';
import { sharedImagePath, type Accel, type QemuRuntime } from './runtime.js';
import { observedProcess, runState, type Observed, type QueryMigrate } from './status.js';

export interface QemuNodeOptions {
  /** GANETI_TEMPORAL_HOME: the default state and shared-image directories live there. */
  home: string;
  node: string;
  accel?: Accel;
  /** The QEMU binary (default qemu-system-x86_64 on PATH). */
  binary?: string;
  /**
   * Multiboot kernel for instances started on this node. Default: the heartbeat guest, built from
   * source into `<state dir>/guest/` on first use; null: no kernel (the firmware halts).
   */
  kernel?: string | null;
  /** Directory of sharedfile disk images, the same path on every node (default `$home/shared`). */
  sharedDir?: string;
  /** Where per-node process metadata, monitor sockets and logs go (default `$home/qemu`). */
  stateDir?: string;
  /**
   * How long a status query waits for QEMU's MIGRATION event while the migration is still running
   * (ms, default 250): completion is then seen at once instead of at the next poll, and the master's
   * frequent polls cost QEMU (and the node) fewer round trips.
   */
  statusWaitMs?: number;
  /** How long finalize on the target waits for the destination to leave `inmigrate` (ms, default 10 s). */
  switchoverWaitMs?: number;
  /**
   * Interval (ms) of the node's watch: a powered-off node (`sim power`) loses its processes, and
   * processes that died on their own are reported gone. 0 turns it off.
   */
  watchMs?: number;
}

/** What the driver is composed with (both for this node); it never reads the simulator's document itself. */
export interface QemuNodeDeps {
  /** The node's facts: power, memory, secondary IP, migration port pool. */
  host: NodeHost;
  /** The storage side: whether disks can be opened here, and where observations are reported. */
  storage: StorageSide;
}

export interface RpcCtx {
  /** Reports the instance's process as observed (null: none runs), as `o` is when the RPC ends. */
  mirror(name: string, o: Observed | null): void;
  edit(e: MirrorEdit): void;
  /** The RPC log entry's detail. */
  detail: string | undefined;
}

export const fail = (msg: string): never => {
  throw new NodeRpcError(msg);
};

// ---- per-instance serialisation within a process ------------------------------------------------

const locks = new Map<string, Promise<void>>();
/** Per key, the abort of an RPC that holds the instance only to wait for a QMP event. */
const yielders = new Map<string, () => void>();
/** Per key, the calls running or queued. */
const queued = new Map<string, number>();

/**
 * Runs `fn` after every earlier call with the same key in this process (one QMP client at a time).
 * An RPC ahead that only waits for an event (see `QemuFrame.yielding`) stops waiting at once.
 */
function exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
  yielders.get(key)?.();
  queued.set(key, (queued.get(key) ?? 0) + 1);
  const prev = locks.get(key) ?? Promise.resolve();
  const run = prev.then(fn, fn).finally(() => {
    const n = (queued.get(key) ?? 1) - 1;
    if (n > 0) queued.set(key, n);
    else queued.delete(key);
  });
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  locks.set(key, tail);
  void tail.then(() => {
    if (locks.get(key) === tail) locks.delete(key);
  });
  return run;
}

/** Any failure as the NodeRpcError Ganeti would report; an unreachable monitor is transient. */
function toRpcError(e: unknown, prefix: string): NodeRpcError {
  if (e instanceof NodeRpcError) return e;
  if (e instanceof QmpError) return new NodeRpcError(`${prefix}${e.desc}`);
  if (e instanceof QmpUnavailable || e instanceof LockTimeoutError) return new NodeRpcError(`${prefix}${e.message}`, true);
  return new NodeRpcError(`${prefix}${e instanceof Error ? e.message : String(e)}`);
}

export class QemuFrame implements LaunchSite {
  readonly node: string;
  readonly files: QemuFiles;
  readonly storage: StorageSide;
  readonly host: NodeHost;
  readonly accel: Accel;
  readonly binary: string;
  readonly sharedDir: string;
  readonly stateDir: string;
  readonly statusWaitMs: number;
  readonly switchoverWaitMs: number;
  private guestKernel: string | null | undefined;
  private watch: NodeJS.Timeout | undefined;

  constructor(opts: QemuNodeOptions, deps: QemuNodeDeps) {
    this.node = opts.node;
    this.storage = deps.storage;
    this.host = deps.host;
    this.stateDir = opts.stateDir ?? join(opts.home, 'qemu');
    this.files = new QemuFiles(join(this.stateDir, opts.node));
    this.accel = opts.accel ?? 'tcg';
    this.binary = opts.binary ?? 'qemu-system-x86_64';
    this.sharedDir = opts.sharedDir ?? join(opts.home, 'shared');
    this.guestKernel = opts.kernel;
    this.statusWaitMs = opts.statusWaitMs ?? 250;
    this.switchoverWaitMs = opts.switchoverWaitMs ?? 10_000;
    // Monitor sockets live in the state dir; a unix socket path must fit in 108 bytes.
    if (join(this.files.dir, `${'x'.repeat(40)}.qmp`).length > 107) {
      throw new Error(`the QEMU state directory ${this.files.dir} is too long for QMP unix sockets; use a shorter GANETI_TEMPORAL_HOME`);
    }
    if (opts.watchMs !== 0) {
      this.watch = setInterval(() => void this.tick(), opts.watchMs ?? 1000);
      this.watch.unref();
    }
  }

  /** Stops the watch (processes keep running). */
  close(): void {
    if (this.watch) clearInterval(this.watch);
    this.watch = undefined;
  }

  kernel(): string | null {
    if (this.guestKernel === undefined) this.guestKernel = defaultKernel(join(this.stateDir, 'guest'), this.node);
    return this.guestKernel;
  }

  qmp<T>(meta: QemuMeta, fn: (q: QmpClient) => Promise<T>): Promise<T> {
    return qmpFor(this.files, meta, fn);
  }

  launch(name: string, deviceArgs: string[], runtime: QemuRuntime, incoming?: { ip: string; port: number }): Promise<QemuMeta> {
    return launch(this, name, deviceArgs, runtime, incoming);
  }

  /** Runs `fn` after every earlier call on the same instance in this process. */
  exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return exclusive(this.files.metaPath(name), fn);
  }

  /**
   * An abort signal for a wait inside an RPC on `name` (which holds the instance and its monitor):
   * it fires when another RPC on the instance is called in this process, so that a long wait for a
   * QMP event never delays e.g. a migration control. `release` when the wait is over.
   */
  yielding(name: string): { signal: AbortSignal; release: () => void } {
    const key = this.files.metaPath(name);
    const ac = new AbortController();
    const abort = () => ac.abort();
    yielders.set(key, abort);
    if ((queued.get(key) ?? 0) > 1) abort(); // another RPC is queued behind this one already
    return { signal: ac.signal, release: () => void (yielders.get(key) === abort && yielders.delete(key)) };
  }

  /** The node's facts (the RPC frame's power check has found them). */
  facts(): NodeFacts {
    return this.host.facts()!;
  }

  // ---- observation ---------------------------------------------------------------------------

  /** The instance's process as it is now (null: none runs; stale files are removed). */
  async observe(name: string): Promise<Observed | null> {
    const found = this.files.locate(name);
    if (!found) return null;
    if (found.pid === null) {
      this.files.dropIfStale(found);
      return null;
    }
    const { meta, pid } = found;
    return this.qmp(meta, async (q) => {
      const status = await runState(q);
      if (meta.incoming && status !== 'inmigrate') {
        // The migration into this process is over (e.g. a cleanup adopted it without a finalize).
        delete meta.incoming;
        this.files.writeMeta(meta);
      }
      const out: Observed = { meta, pid, status };
      if (meta.migration) out.migrate = await q.execute<QueryMigrate>('query-migrate');
      return out;
    });
  }

  /** Memory of this node's live processes (MiB). */
  private usedMemory(except?: string): number {
    let used = 0;
    for (const name of this.files.metaNames()) {
      if (name === except) continue;
      const f = this.files.locate(name);
      if (f?.pid) used += f.meta.memory;
    }
    return used;
  }

  freeMemory(except?: string): number {
    const n = this.facts();
    return n.memoryTotal - n.dom0Memory - this.usedMemory(except);
  }

  /**
   * Ganeti opens the disks when it starts the device model: the storage side must have them ready
   * (DRBD Primary here, sharedfile opened), and a sharedfile image must exist.
   */
  async checkDisks(inst: RpcInstance, prefix: string): Promise<void> {
    const refusal = await this.storage.openRefusal(inst);
    if (refusal) fail(`${prefix}${refusal}`);
    for (const d of inst.disks) {
      if (d.template !== 'drbd' && !existsSync(sharedImagePath(this.sharedDir, inst, d.index))) {
        fail(`${prefix}cannot open disk ${d.index}: ${sharedImagePath(this.sharedDir, inst, d.index)} does not exist`);
      }
    }
  }

  /** Reports to the storage side, if it wants to know. */
  report(edits: MirrorEdit[], log?: MirrorLogEntry, unlessUnchanged = false): Promise<void> {
    return this.storage.hypervisorObserved?.({ edits, ...(log ? { log } : {}), unlessUnchanged }) ?? Promise.resolve();
  }

  // ---- the watch -----------------------------------------------------------------------------

  /**
   * The watch: a node whose host reports it powered off loses its processes; processes of this node
   * that exited on their own (a guest that powered off) are reported gone. Liveness only, no QMP.
   */
  private async tick(): Promise<void> {
    try {
      if (!this.host.exists()) {
        this.close(); // the cluster is gone (a test removed it)
        return;
      }
      const n = this.host.facts();
      if (!n) return;
      if (!n.powered) {
        await this.killAll();
        return;
      }
      for (const name of this.files.metaNames()) {
        const key = this.files.metaPath(name);
        if (!locks.has(key)) await exclusive(key, () => this.reapIfDead(name)); // else an RPC on it reports itself
      }
      // A recorded process this node has no state files for (a freshly built or injected record) is gone too.
      await this.report([{ kind: 'keep-only', instances: this.files.metaNames() }], undefined, true);
    } catch {
      // a watch tick must never take the agent down; the next one tries again
    }
  }

  /** Holding the instance: whether its process lives; if not, its files go and it is reported gone. */
  private async reapIfDead(name: string): Promise<boolean> {
    const f = this.files.locate(name);
    if (f?.pid) return true;
    this.files.dropIfStale(f);
    await this.report([{ kind: 'process', instance: name, process: null }], undefined, true);
    return false;
  }

  /**
   * `DiskHolders`: a live QEMU process of the instance on this node holds its disks open (from the
   * node's own state files). `step` runs holding the instance, so no RPC of this agent starts or
   * stops its process meanwhile (one agent per node: worker/agent-lock.ts).
   */
  withHolders<R>(name: string, step: (held: () => boolean) => Promise<R>): Promise<R> {
    return exclusive(this.files.metaPath(name), async () => {
      await this.reapIfDead(name);
      return step(() => !!this.files.locate(name)?.pid);
    });
  }

  private async killAll(): Promise<void> {
    for (const name of this.files.metaNames()) {
      await exclusive(this.files.metaPath(name), async () => {
        const f = this.files.locate(name);
        if (f?.pid) {
          await killPid(f.pid);
          this.files.removeFiles(f.meta);
        } else this.files.dropIfStale(f);
      });
    }
  }

  private async checkPower(): Promise<void> {
    const n = this.host.facts();
    if (!n) fail(`node ${this.node} has no hardware entry`);
    if (!n!.powered) {
      await this.killAll();
      throw new NodeRpcError(`node ${this.node} does not answer (powered off)`, true);
    }
  }

  // ---- the RPC frame -------------------------------------------------------------------------

  /**
   * One hypervisor RPC: power check, the body (serialised per instance), then what it observed and
   * the RPC log entry, reported to the storage side in one report. Reported on failure too (a killed
   * process is gone whatever the RPC reports). Read-only RPCs report `unlessUnchanged` (status polls
   * would otherwise rewrite the simulated hardware every few milliseconds).
   */
  async rpc<R>(
    rpc: string,
    instance: string | undefined,
    detail: string | undefined,
    prefix: string,
    body: (ctx: RpcCtx) => Promise<R>,
    readOnly = false,
  ): Promise<R> {
    const pending: Array<() => MirrorEdit> = [];
    const ctx: RpcCtx = {
      mirror: (name, o) => void pending.push(() => ({ kind: 'process', instance: name, process: o && observedProcess(o) })),
      edit: (e) => void pending.push(() => e),
      detail,
    };
    const edits = () => pending.map((f) => f());
    const entry = (outcome: 'ok' | 'error', error?: string): MirrorLogEntry => ({
      rpc,
      ...(instance ? { instance } : {}),
      ...(ctx.detail ? { detail: ctx.detail } : {}),
      outcome,
      ...(error ? { error } : {}),
    });
    let result: R;
    try {
      await this.checkPower();
      result = instance ? await this.exclusive(instance, () => body(ctx)) : await body(ctx);
    } catch (e) {
      const err = toRpcError(e, prefix);
      await this.report(edits(), entry('error', err.message)).catch(() => undefined);
      throw err;
    }
    await this.report(edits(), entry('ok'), readOnly);
    return result;
  }
}
