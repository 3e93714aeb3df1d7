/**
 * A node whose hypervisor is real QEMU, driven over QMP: Ganeti's KVM side (behaviour spec §10) as
 * a `NodeRpc`, next to the simulated DRBD of the hardware document.
 *
 * - Hypervisor RPCs (node_info, instance_*, migration_info, accept, migrate, status, finalize,
 *   balloon, shutdown, start) act on real qemu-system-x86_64 processes, one per instance and node.
 * - Block-device and DRBD RPCs are the simulated node's (`SimNode`): there is no DRBD on a test
 *   machine, so DRBD keeps its simulated state machine. bridges_exist is the simulated node's too
 *   (NICs are not attached).
 * - Every hypervisor RPC mirrors what it observed of the real process into the hardware document's
 *   `processes` table, so that the simulated DRBD checks ("device held open"), `sim status` and the
 *   invariant checker see the truth. A mirrored migration carries `bandwidth: 0`, which keeps the
 *   simulator's own migration dynamics off it: only QEMU decides how a real migration ends.
 *
 * Crash safety: nothing essential lives in memory. Per instance the node keeps a metadata file
 * (`<state dir>/<node>/<instance>.json`: pid, start time, monitor socket, command line, runtime,
 * incoming port, migration target), written *before* each step that creates something, so a retried
 * RPC after a node-agent crash re-attaches to the process (recognised by pid + start time + its
 * unique monitor socket on the command line) instead of starting anew. QEMU runs detached in its own
 * process group and outlives the agent.
 */
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RpcInstance } from '../../domain/instance.js';
import {
  NodeRpcError,
  type BlockdevStatus,
  type HvMigrationStatus,
  type MigrationStatusPayload,
  type MigrationTarget,
  type NodeRpc,
  type WaitSyncPayload,
} from '../../domain/ports.js';
import type { InstanceInfoPayload, NodeInfoPayload } from '../../domain/prereq.js';
// eslint-disable-next-line no-restricted-imports -- the QEMU driver still keeps its state in the simulator's hardware document (issue 15)
import { SimHardware } from '../sim/hardware.js';
// eslint-disable-next-line no-restricted-imports -- the simulated DRBD (issue 15 splits the storage port)
import { SimNode } from '../sim/node.js';
// eslint-disable-next-line no-restricted-imports -- see above
import type { SimMigration, SimNodeHw, SimProcess, SimState } from '../sim/state.js';
import { LockTimeoutError } from '../common/json-file.js';
import { buildGuest, type GuestOptions } from './guest.js';
import { findQemuByArg, isOurQemu, killPid, logTail, pidAlive, portFree, spawnDetached, startTimeOf, waitGone } from './process.js';
import { QmpClient, QmpError, QmpUnavailable, withQmp } from './qmp.js';
import { newRuntime, parseRuntime, qmpArg, sharedImagePath, type Accel, type QemuRuntime } from './runtime.js';

const MiB = 1024 * 1024;
/** Metadata without a pid younger than this is a start in progress, not a leftover. */
const STARTING_GRACE_MS = 30_000;

export interface QemuNodeOptions {
  /** GANETI_TEMPORAL_HOME: the hardware document lives there. */
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
   * processes that died on their own leave the mirror. 0 turns it off.
   */
  watchMs?: number;
}

/** The guest the qemu backend boots by default: idle (halts between 100 Hz ticks), 32 MiB to migrate. */
export const DEFAULT_GUEST: GuestOptions = { fillMb: 32, hlt: true, hz: 100 };

/** What the driver records per instance (the "runtime file" plus process identity). */
export interface QemuMeta {
  instance: string;
  node: string;
  pid: number | null;
  /** When the start was recorded (ms since the epoch). */
  createdAt?: number;
  /** /proc start time of `pid`: tells our process from a later one with the same pid. */
  startTime: string | null;
  qmp: string;
  log: string;
  argv: string[];
  /** Serialized QemuRuntime: the migration info this process answers with. */
  runtime: string;
  /** Current memory (the balloon target), MiB. */
  memory: number;
  vcpus: number;
  incoming?: { ip: string; port: number };
  migration?: { targetNode: string; ip: string; port: number; live: boolean; startedAt: number };
}

/** A live process of ours and what QMP said about it. */
interface Observed {
  meta: QemuMeta;
  pid: number;
  /** QEMU's run state (query-status). */
  status: string;
  migrate?: QueryMigrate;
}

export interface QueryMigrate {
  status?: string;
  'total-time'?: number;
  downtime?: number;
  'error-desc'?: string;
  ram?: { transferred: number; total: number; remaining: number };
}

type DocEdit = (n: SimNodeHw, s: SimState, now: number) => void;
interface RpcCtx {
  edit(f: DocEdit): void;
  detail: string | undefined;
}

const fail = (msg: string): never => {
  throw new NodeRpcError(msg);
};

// ---- per-instance serialisation within a process ------------------------------------------------

const locks = new Map<string, Promise<void>>();

/** Runs `fn` after every earlier call with the same key in this process (one QMP client at a time). */
function exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(key) ?? Promise.resolve();
  const run = prev.then(fn, fn);
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

const versions = new Map<string, string>();

/** `QEMU emulator version 7.2.22 (…)` → `7.2.22` (Ganeti's hv_version comes from the binary too). */
export function qemuVersion(binary: string): string {
  let v = versions.get(binary);
  if (!v) {
    const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
    const m = /version (\d+\.\d+\.\d+)/.exec(r.stdout ?? '');
    if (!m) throw new NodeRpcError(`cannot determine the QEMU version of ${binary}: ${r.error?.message ?? r.stderr ?? ''}`);
    v = m[1]!;
    versions.set(binary, v);
  }
  return v;
}

// ---- QEMU → Ganeti status mapping ---------------------------------------------------------------

/** QEMU's MigrationStatus → Ganeti's (what `instance_get_migration_status` reports). */
export function ganetiStatus(qemu: string | undefined): HvMigrationStatus {
  switch (qemu) {
    case undefined:
    case 'none':
      return 'none';
    case 'setup':
      return 'setup';
    case 'completed':
      return 'completed';
    case 'failed':
      return 'failed';
    case 'cancelling':
    case 'cancelled':
      return 'cancelled'; // only our own abort cancels; it will not complete any more
    case 'postcopy-active':
    case 'postcopy-paused':
    case 'postcopy-recover':
      return 'postcopy-active';
    default:
      return 'active'; // active, pre-switchover, device, wait-unplug, …: still transferring
  }
}

const IN_FLIGHT = new Set([
  'setup',
  'active',
  'pre-switchover',
  'device',
  'wait-unplug',
  'postcopy-active',
  'postcopy-paused',
  'postcopy-recover',
]);

export function statusPayload(m: QueryMigrate): MigrationStatusPayload {
  const out: MigrationStatusPayload = { status: ganetiStatus(m.status) };
  if (m.ram) {
    out.transferredRam = Math.round((m.ram.transferred / MiB) * 100) / 100;
    out.totalRam = Math.round((m.ram.total / MiB) * 100) / 100;
  }
  if (m['error-desc']) out.error = m['error-desc'];
  return out;
}

/** `completed: total-time 266 ms, downtime 31 ms, 136.0 MiB sent` (QEMU's statistics of a migration). */
export function migrationSummary(m: QueryMigrate): string {
  const sent = m.ram ? `, ${(m.ram.transferred / MiB).toFixed(1)} MiB sent` : '';
  return `completed: total-time ${m['total-time'] ?? '?'} ms, downtime ${m.downtime ?? '?'} ms${sent}`;
}

/** The hardware document's view of a real process. */
function mirrorEntry(prev: SimProcess | undefined, o: Observed, now: number): SimProcess {
  const state: SimProcess['state'] = o.status === 'inmigrate' ? 'incoming' : o.status === 'running' ? 'running' : 'paused';
  const p: SimProcess = { state, memory: o.meta.memory, vcpus: o.meta.vcpus, runtime: o.meta.runtime, dirtyRate: 0 };
  if (state === 'paused') p.pausedBy = o.status === 'postmigrate' ? 'postmigrate' : 'stop';
  if (state === 'incoming' && o.meta.incoming) p.incoming = { port: o.meta.incoming.port };
  const m = o.meta.migration;
  const st = o.migrate?.status;
  if (m && st && st !== 'none') {
    const g = ganetiStatus(st);
    const status: SimMigration['status'] = g === 'completed' || g === 'failed' || g === 'cancelled' ? g : 'active';
    const same = prev?.migration && prev.migration.targetNode === m.targetNode && prev.migration.port === m.port;
    p.migration = {
      targetNode: m.targetNode,
      targetIp: m.ip,
      port: m.port,
      live: m.live,
      startedAt: same ? prev.migration!.startedAt : now,
      ram: o.meta.memory,
      // No simulated dynamics on a real migration: with zero bandwidth the simulator never completes it.
      bandwidth: 0,
      dirtyRate: 0,
      status,
    };
    if (status !== 'active') p.migration.endedAt = same && prev.migration!.endedAt !== undefined ? prev.migration!.endedAt : now;
    if (o.migrate?.['error-desc']) p.migration.error = o.migrate['error-desc'];
  }
  return p;
}

const mirror =
  (name: string, o: Observed | null): DocEdit =>
  (n, _s, now) => {
    if (!o) delete n.processes[name];
    else n.processes[name] = mirrorEntry(n.processes[name], o, now);
  };

class AddressInUse extends Error {}

export class QemuNode implements NodeRpc {
  readonly hw: SimHardware;
  /** The simulated node: block devices and DRBD. */
  readonly sim: SimNode;
  readonly dir: string;
  readonly accel: Accel;
  readonly binary: string;
  readonly sharedDir: string;
  private readonly stateDir: string;
  private watch: NodeJS.Timeout | undefined;
  private readonly statusWaitMs: number;
  private readonly switchoverWaitMs: number;
  private guestKernel: string | null | undefined;

  constructor(readonly opts: QemuNodeOptions) {
    this.hw = SimHardware.forHome(opts.home);
    this.sim = new SimNode(this.hw, opts.node);
    this.stateDir = opts.stateDir ?? join(opts.home, 'qemu');
    this.dir = join(this.stateDir, opts.node);
    this.accel = opts.accel ?? 'tcg';
    this.binary = opts.binary ?? 'qemu-system-x86_64';
    this.sharedDir = opts.sharedDir ?? join(opts.home, 'shared');
    this.guestKernel = opts.kernel;
    this.statusWaitMs = opts.statusWaitMs ?? 250;
    this.switchoverWaitMs = opts.switchoverWaitMs ?? 10_000;
    // Monitor sockets live in the state dir; a unix socket path must fit in 108 bytes.
    if (join(this.dir, `${'x'.repeat(40)}.qmp`).length > 107) {
      throw new Error(`the QEMU state directory ${this.dir} is too long for QMP unix sockets; use a shorter GANETI_TEMPORAL_HOME`);
    }
    if (opts.watchMs !== 0) {
      this.watch = setInterval(() => void this.tick(), opts.watchMs ?? 1000);
      this.watch.unref();
    }
  }

  get node(): string {
    return this.opts.node;
  }

  /** Stops the watch (processes keep running). */
  close(): void {
    if (this.watch) clearInterval(this.watch);
    this.watch = undefined;
  }

  // ---- files --------------------------------------------------------------------------------

  metaPath(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  qmpPath(name: string): string {
    return join(this.dir, `${name}.qmp`);
  }

  logPath(name: string): string {
    return join(this.dir, `${name}.log`);
  }

  /** QMP commands sent to the instance's process, with their errors (read by operators and tests). */
  journalPath(name: string): string {
    return join(this.dir, `${name}.qmp-journal`);
  }

  readMeta(name: string): QemuMeta | null {
    try {
      return JSON.parse(readFileSync(this.metaPath(name), 'utf8')) as QemuMeta;
    } catch {
      return null;
    }
  }

  private writeMeta(meta: QemuMeta): void {
    mkdirSync(this.dir, { recursive: true });
    const path = this.metaPath(meta.instance);
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(meta, null, 1));
    renameSync(tmp, path);
  }

  private removeFiles(meta: QemuMeta): void {
    rmSync(this.metaPath(meta.instance), { force: true });
    rmSync(meta.qmp, { force: true });
  }

  /**
   * Removes the files of an instance whose process is gone. Metadata without a pid that is only
   * seconds old belongs to a start in progress (possibly in another agent process, between writing
   * its intent and the spawn): it is left alone, or its monitor socket would be deleted under QEMU.
   */
  private dropIfStale(found: { meta: QemuMeta; pid: number | null } | null): void {
    if (!found || found.pid !== null) return;
    if (found.meta.pid === null && Date.now() - (found.meta.createdAt ?? 0) < STARTING_GRACE_MS) return;
    this.removeFiles(found.meta);
  }

  metaNames(): string[] {
    try {
      return readdirSync(this.dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -'.json'.length))
        .sort();
    } catch {
      return [];
    }
  }

  /** The instance's live process, if any (re-found by its socket when the pid was never recorded). */
  locate(name: string): { meta: QemuMeta; pid: number | null } | null {
    const meta = this.readMeta(name);
    if (!meta) return null;
    const arg = qmpArg(meta.qmp);
    if (meta.pid !== null) return { meta, pid: isOurQemu(meta.pid, arg, meta.startTime) ? meta.pid : null };
    const pid = findQemuByArg(arg);
    if (pid !== null) {
      meta.pid = pid;
      meta.startTime = startTimeOf(pid);
      this.writeMeta(meta);
    }
    return { meta, pid };
  }

  private journal(name: string): (line: string) => void {
    const path = this.journalPath(name);
    return (line) => {
      try {
        appendFileSync(path, `${new Date().toISOString()} ${line}\n`);
      } catch {
        // the journal is for people; never fail an RPC over it
      }
    };
  }

  private qmp<T>(meta: QemuMeta, fn: (q: QmpClient) => Promise<T>): Promise<T> {
    return withQmp(meta.qmp, fn, { journal: this.journal(meta.instance), connectTimeoutMs: 5000 });
  }

  // ---- observation ---------------------------------------------------------------------------

  /** The instance's process as it is now (null: none runs; stale files are removed). */
  private async observe(name: string): Promise<Observed | null> {
    const found = this.locate(name);
    if (!found) return null;
    if (found.pid === null) {
      this.dropIfStale(found);
      return null;
    }
    const { meta, pid } = found;
    return this.qmp(meta, async (q) => {
      const status = await runState(q);
      if (meta.incoming && status !== 'inmigrate') {
        // The migration into this process is over (e.g. a cleanup adopted it without a finalize).
        delete meta.incoming;
        this.writeMeta(meta);
      }
      const out: Observed = { meta, pid, status };
      if (meta.migration) out.migrate = await q.execute<QueryMigrate>('query-migrate');
      return out;
    });
  }

  /** Memory of this node's live processes (MiB). */
  private usedMemory(except?: string): number {
    let used = 0;
    for (const name of this.metaNames()) {
      if (name === except) continue;
      const f = this.locate(name);
      if (f?.pid) used += f.meta.memory;
    }
    return used;
  }

  /**
   * The watch: a node powered off in the hardware document loses its processes; processes that
   * exited on their own (a guest that powered off) leave the mirror. Liveness only, no QMP.
   */
  private async tick(): Promise<void> {
    try {
      if (!this.hw.exists()) {
        this.close(); // the cluster is gone (a test removed it)
        return;
      }
      const n = this.hw.read().state.nodes[this.node];
      if (!n) return;
      if (n.powered === false) {
        await this.killAll();
        return;
      }
      for (const name of Object.keys(n.processes)) await this.reapIfDead(name, false);
    } catch {
      // a watch tick must never take the agent down; the next one tries again
    }
  }

  /** Removes the mirror entry of an instance whose process is gone (before a simulated disk check). */
  private async reapIfDead(name: string, wait = true): Promise<void> {
    const key = this.metaPath(name);
    if (!wait && locks.has(key)) return; // an RPC is working on it: it will mirror itself
    await exclusive(key, async () => {
      const f = this.locate(name);
      if (f?.pid) return;
      this.dropIfStale(f);
      if (this.hw.read().state.nodes[this.node]?.processes[name]) {
        await this.hw.mutate((s) => void delete s.nodes[this.node]?.processes[name]);
      }
    });
  }

  private async killAll(): Promise<void> {
    for (const name of this.metaNames()) {
      await exclusive(this.metaPath(name), async () => {
        const f = this.locate(name);
        if (f?.pid) {
          await killPid(f.pid);
          this.removeFiles(f.meta);
        } else this.dropIfStale(f);
      });
    }
  }

  // ---- the RPC frame -------------------------------------------------------------------------

  /**
   * One hypervisor RPC: power check, the body (serialised per instance), then the mirror edits and
   * the RPC log entry in one write of the hardware document. Edits are applied on failure too (a
   * killed process is gone whatever the RPC reports). Read-only RPCs whose observation changed
   * nothing in the mirror are not written (status polls would otherwise rewrite the document every
   * few milliseconds).
   */
  private async rpc<R>(
    rpc: string,
    instance: string | undefined,
    detail: string | undefined,
    prefix: string,
    body: (ctx: RpcCtx) => Promise<R>,
    readOnly = false,
  ): Promise<R> {
    const edits: DocEdit[] = [];
    const ctx: RpcCtx = { edit: (f) => void edits.push(f), detail };
    const entry = (outcome: 'ok' | 'error', error?: string) => ({
      node: this.node,
      rpc,
      ...(instance ? { instance } : {}),
      ...(ctx.detail ? { detail: ctx.detail } : {}),
      outcome,
      ...(error ? { error } : {}),
    });
    let result: R;
    try {
      await this.checkPower();
      result = instance ? await exclusive(this.metaPath(instance), () => body(ctx)) : await body(ctx);
    } catch (e) {
      const err = toRpcError(e, prefix);
      await this.hw
        .mutate((s, now) => {
          const n = s.nodes[this.node];
          if (n) for (const f of edits) f(n, s, now);
          SimHardware.log(s, entry('error', err.message));
        })
        .catch(() => undefined);
      throw err;
    }
    if (readOnly && !this.wouldChange(edits)) return result;
    await this.hw.mutate((s, now) => {
      const n = s.nodes[this.node];
      if (n) for (const f of edits) f(n, s, now);
      SimHardware.log(s, entry('ok'));
    });
    return result;
  }

  /** Whether applying `edits` would change this node's processes in the document. */
  private wouldChange(edits: DocEdit[]): boolean {
    if (!edits.length) return false;
    const { state, now } = this.hw.read();
    const n = state.nodes[this.node];
    if (!n) return false;
    const before = JSON.stringify(n.processes);
    for (const f of edits) f(n, state, now);
    return JSON.stringify(n.processes) !== before;
  }

  private async checkPower(): Promise<void> {
    const n = this.hw.read().state.nodes[this.node];
    if (!n) fail(`node ${this.node} has no hardware entry`);
    if (n!.powered === false) {
      await this.killAll();
      throw new NodeRpcError(`node ${this.node} does not answer (powered off)`, true);
    }
  }

  /** Ganeti opens the disks when it starts the device model: DRBD must be Primary here, sharedfile open. */
  private checkDisks(inst: RpcInstance, prefix: string): void {
    const n = this.hw.read().state.nodes[this.node]!;
    for (const d of inst.disks) {
      if (d.template === 'drbd') {
        const dev = d.drbd ? n.drbd[String(d.drbd.minor)] : undefined;
        if (!dev || dev.instance !== inst.name || !dev.attached)
          fail(`${prefix}cannot open disk ${d.index}: drbd${d.drbd?.minor} is not assembled on ${this.node}`);
        if (dev!.role !== 'Primary') fail(`${prefix}cannot open disk ${d.index}: drbd${d.drbd?.minor} is Secondary (Wrong medium type)`);
      } else if (!n.shared[d.uuid]) {
        fail(`${prefix}cannot open disk ${d.index}: not opened on ${this.node}`);
      } else if (!existsSync(sharedImagePath(this.sharedDir, inst, d.index))) {
        fail(`${prefix}cannot open disk ${d.index}: ${sharedImagePath(this.sharedDir, inst, d.index)} does not exist`);
      }
    }
  }

  private freeMemory(except?: string): number {
    const { state: s } = this.hw.read();
    const n = s.nodes[this.node]!;
    return n.memoryTotal - s.params.dom0Memory - this.usedMemory(except);
  }

  private kernel(): string | null {
    if (this.guestKernel === undefined) {
      try {
        this.guestKernel = buildGuest(join(this.stateDir, 'guest'), DEFAULT_GUEST);
      } catch (e) {
        console.warn(`[qemu ${this.node}] no guest kernel (${(e as Error).message}); instances boot the firmware only`);
        this.guestKernel = null;
      }
    }
    return this.guestKernel;
  }

  // ---- processes -----------------------------------------------------------------------------

  /**
   * Starts QEMU for `name`. The metadata is written before the spawn (a crash right after it still
   * finds the process by its socket) and completed with the pid after it. Resolves when QMP answers.
   */
  private async launch(
    name: string,
    deviceArgs: string[],
    runtime: QemuRuntime,
    incoming?: { ip: string; port: number },
  ): Promise<QemuMeta> {
    mkdirSync(this.dir, { recursive: true });
    const qmp = this.qmpPath(name);
    rmSync(qmp, { force: true }); // a SIGKILLed QEMU leaves its socket file behind
    const argv = [...deviceArgs, '-qmp', qmpArg(qmp)];
    if (incoming) argv.push('-incoming', `tcp:${incoming.ip}:${incoming.port}`);
    const meta: QemuMeta = {
      instance: name,
      node: this.node,
      pid: null,
      createdAt: Date.now(),
      startTime: null,
      qmp,
      log: this.logPath(name),
      argv,
      runtime: JSON.stringify(runtime),
      memory: runtime.memory,
      vcpus: runtime.vcpus,
      ...(incoming ? { incoming } : {}),
    };
    this.writeMeta(meta);
    appendFileSync(meta.log, `--- ${new Date().toISOString()} ${this.node}: ${this.binary} ${argv.join(' ')}\n`);
    const pid = await spawnDetached(this.binary, argv, meta.log);
    meta.pid = pid;
    meta.startTime = startTimeOf(pid);
    this.writeMeta(meta);
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (!pidAlive(pid)) {
        this.removeFiles(meta);
        const tail = logTail(meta.log);
        if (/Address already in use/.test(tail.split('\n---').pop() ?? '')) throw new AddressInUse(tail);
        throw new Error(`QEMU exited at start: ${tail.split('\n').slice(-3).join(' / ')}`);
      }
      try {
        (await QmpClient.connect(qmp, { connectTimeoutMs: 1000 })).close();
        return meta;
      } catch {
        if (Date.now() > deadline) {
          await killPid(pid);
          this.removeFiles(meta);
          throw new QmpUnavailable(`QEMU (pid ${pid}) did not open its monitor within 20 s`);
        }
        await sleep(5);
      }
    }
  }

  /** `quit`, then SIGKILL if QEMU does not exit. */
  private async quit(meta: QemuMeta, pid: number): Promise<void> {
    await this.qmp(meta, (q) => q.execute('quit')).catch(() => undefined);
    if (!(await waitGone(pid, 10_000))) await killPid(pid);
  }

  private ensureImages(inst: RpcInstance): void {
    for (const d of inst.disks) {
      if (d.template !== 'sharedfile' && d.template !== 'file') continue;
      const path = sharedImagePath(this.sharedDir, inst, d.index);
      if (existsSync(path)) continue;
      // A sparse image of the disk's size (what Ganeti's disk creation would have made).
      mkdirSync(dirname(path), { recursive: true });
      const fd = openSync(path, 'w');
      try {
        ftruncateSync(fd, d.size * MiB);
      } finally {
        closeSync(fd);
      }
    }
  }

  // ---- node and instance information ---------------------------------------------------------

  async nodeInfo(): Promise<NodeInfoPayload> {
    return this.rpc('node_info', undefined, undefined, 'Failed to get node information: ', async () => {
      const { state: s } = this.hw.read();
      const n = s.nodes[this.node]!;
      return {
        memoryTotal: n.memoryTotal,
        memoryDom0: s.params.dom0Memory,
        memoryFree: Math.max(0, this.freeMemory()),
        hvVersion: qemuVersion(this.binary),
      };
    });
  }

  /** The instances this node's QEMU processes run (incoming ones included), each confirmed over QMP. */
  async instanceList(): Promise<string[]> {
    return this.rpc(
      'instance_list',
      undefined,
      undefined,
      'Failed to list instances: ',
      async (ctx) => {
        const names: string[] = [];
        for (const name of this.metaNames()) {
          const o = await exclusive(this.metaPath(name), () => this.observe(name));
          ctx.edit(mirror(name, o));
          if (o) names.push(name);
        }
        ctx.edit((n) => {
          for (const k of Object.keys(n.processes)) if (!names.includes(k)) delete n.processes[k];
        });
        return names;
      },
      true,
    );
  }

  async instanceInfo(inst: RpcInstance): Promise<InstanceInfoPayload | null> {
    return this.rpc(
      'instance_info',
      inst.name,
      undefined,
      'Failed to get instance information: ',
      async (ctx) => {
        const o = await this.observe(inst.name);
        ctx.edit(mirror(inst.name, o));
        if (!o) return null;
        return { state: mirrorEntry(undefined, o, 0).state, memory: o.meta.memory, vcpus: o.meta.vcpus };
      },
      true,
    );
  }

  async bridgesExist(bridges: string[]): Promise<void> {
    return this.sim.bridgesExist(bridges);
  }

  async instanceMigratable(inst: RpcInstance): Promise<void> {
    return this.rpc(
      'instance_migratable',
      inst.name,
      undefined,
      '',
      async (ctx) => {
        const o = await this.observe(inst.name);
        ctx.edit(mirror(inst.name, o));
        if (!o || o.status === 'inmigrate') fail(`Instance ${inst.name} is not running`);
      },
      true,
    );
  }

  async migrationInfo(inst: RpcInstance): Promise<string> {
    return this.rpc(
      'migration_info',
      inst.name,
      undefined,
      'Failed to fetch migration information: ',
      async (ctx) => {
        const o = await this.observe(inst.name);
        ctx.edit(mirror(inst.name, o));
        if (!o || o.status === 'inmigrate') return fail(`Failed to fetch migration information: instance ${inst.name} is not running`);
        return o.meta.runtime;
      },
      true,
    );
  }

  // ---- migration ------------------------------------------------------------------------------

  /**
   * Ganeti's AcceptInstance: QEMU with the source's device model (from its migration info) plus
   * `-incoming tcp:<secondary ip>:<port>`, the port taken from a pool (the first free one from the
   * node's base port), and the return path enabled so that a destination that rejects the state
   * makes the source fail instead of reporting success.
   */
  async acceptInstance(inst: RpcInstance, migrationInfo: string, targetIp: string): Promise<{ port: number }> {
    const P = 'Failed to accept instance: ';
    return this.rpc('accept_instance', inst.name, targetIp, P, async (ctx) => {
      const existing = await this.observe(inst.name);
      if (existing) {
        ctx.edit(mirror(inst.name, existing));
        if (existing.status === 'inmigrate' && existing.meta.incoming) return { port: existing.meta.incoming.port }; // re-attach
        return fail(`${P}instance ${inst.name} is already running on ${this.node}`);
      }
      const { state: s } = this.hw.read();
      const n = s.nodes[this.node]!;
      if (targetIp !== n.secondaryIp) return fail(`${P}cannot listen on ${targetIp}: address not on this node`);
      this.checkDisks(inst, P);
      let rt: QemuRuntime;
      try {
        rt = parseRuntime(migrationInfo);
      } catch (e) {
        return fail(`${P}cannot parse the migration information (${(e as Error).message})`);
      }
      const free = this.freeMemory(inst.name);
      if (rt.memory > free) return fail(`${P}not enough memory on ${this.node} (need ${rt.memory} MiB, free ${free} MiB)`);
      const taken = new Set(
        this.metaNames()
          .map((x) => this.readMeta(x)?.incoming?.port)
          .filter((p): p is number => p !== undefined),
      );
      let port = s.params.migrationBasePort;
      for (let tries = 0; ; port++) {
        if (taken.has(port)) continue;
        if (++tries > 100) return fail(`${P}no free migration port on ${targetIp} from ${s.params.migrationBasePort}`);
        if (!(await portFree(targetIp, port))) continue;
        try {
          await this.launch(inst.name, rt.args, rt, { ip: targetIp, port });
          break;
        } catch (e) {
          if (e instanceof AddressInUse) continue; // taken between the probe and QEMU's bind
          throw e;
        }
      }
      const meta = this.readMeta(inst.name)!;
      const status = await this.qmp(meta, async (q) => {
        await q.execute('migrate-set-capabilities', { capabilities: migrationCaps() });
        return runState(q);
      });
      if (status !== 'inmigrate') {
        await killPid(meta.pid!);
        this.removeFiles(meta);
        return fail(`${P}the incoming QEMU is ${status}, not waiting for the migration`);
      }
      ctx.edit(mirror(inst.name, { meta, pid: meta.pid!, status }));
      return { port };
    });
  }

  /**
   * Ganeti's MigrateInstance: `stop` first for a non-live migration, the return-path capability,
   * the instance's bandwidth and downtime, then `migrate` (which returns at once). A migration
   * already under way to the same target is re-attached.
   */
  async instanceMigrate(inst: RpcInstance, target: MigrationTarget, live: boolean): Promise<void> {
    const P = 'Failed to migrate instance: ';
    return this.rpc('instance_migrate', inst.name, `${target.node}:${target.port} ${live ? 'live' : 'non-live'}`, P, async (ctx) => {
      const found = this.locate(inst.name);
      if (!found?.pid) return fail(`${P}Instance not running, cannot migrate`);
      const { meta, pid } = found as { meta: QemuMeta; pid: number };
      const status = await this.qmp(meta, async (q) => {
        const st = await runState(q);
        if (st === 'inmigrate') return fail(`${P}Instance not running, cannot migrate`);
        const cur = await q.execute<QueryMigrate>('query-migrate');
        const m = meta.migration;
        const sameTarget = !!m && m.targetNode === target.node && m.ip === target.ip && m.port === target.port;
        if (cur.status && (IN_FLIGHT.has(cur.status) || cur.status === 'completed')) {
          if (sameTarget) return st; // already under way (a retried call): re-attach
          return fail(
            cur.status === 'completed'
              ? `${P}Can't migrate the vm that was paused due to previous migration`
              : `${P}There's a migration process in progress`,
          );
        }
        // Recorded before `migrate`, so a retry after a crash knows this migration is ours.
        meta.migration = { targetNode: target.node, ip: target.ip, port: target.port, live, startedAt: Date.now() };
        this.writeMeta(meta);
        if (!live && st === 'running') await q.execute('stop');
        await q.execute('migrate-set-capabilities', { capabilities: migrationCaps() });
        await q.execute('migrate-set-parameters', {
          'max-bandwidth': inst.hvparams.migration_bandwidth * MiB,
          'downtime-limit': inst.hvparams.migration_downtime,
          'max-postcopy-bandwidth': inst.hvparams.migration_bandwidth * MiB,
        });
        await q.execute('migrate', { uri: `tcp:${target.ip}:${target.port}` });
        return runState(q);
      });
      const migrate = await this.qmp(meta, (q) => q.execute<QueryMigrate>('query-migrate'));
      ctx.edit(mirror(inst.name, { meta, pid, status, migrate }));
    });
  }

  /**
   * Ganeti's GetMigrationStatus from `query-migrate`, with transferred/total RAM in MiB. QEMU 7.2 can
   * answer the first `completed` with zero timings; the driver then asks again until they are set.
   */
  async instanceGetMigrationStatus(inst: RpcInstance): Promise<MigrationStatusPayload> {
    return this.rpc(
      'instance_get_migration_status',
      inst.name,
      undefined,
      'Failed to get the migration status: ',
      async (ctx) => {
        const found = this.locate(inst.name);
        if (!found?.pid) {
          this.dropIfStale(found);
          ctx.edit(mirror(inst.name, null));
          return fail(`Instance ${inst.name} is not running on ${this.node}`);
        }
        const { meta, pid } = found as { meta: QemuMeta; pid: number };
        const { migrate, status } = await this.qmp(meta, async (q) => {
          let m = await q.execute<QueryMigrate>('query-migrate');
          if (m.status && IN_FLIGHT.has(m.status) && this.statusWaitMs > 0) {
            // Events are on (migrate-set-capabilities "events"): wait a little for the end of the
            // transfer rather than answering "active" and being asked again a poll interval later;
            // then answer with a fresh query either way.
            await q.waitEvent((e) => e.event === 'MIGRATION' && !IN_FLIGHT.has(String(e.data?.status ?? 'active')), this.statusWaitMs);
            m = await q.execute<QueryMigrate>('query-migrate');
          }
          for (let i = 0; m.status === 'completed' && !m['total-time'] && i < 20; i++) {
            await sleep(25);
            m = await q.execute<QueryMigrate>('query-migrate');
          }
          return { migrate: m, status: await runState(q) };
        });
        ctx.edit(mirror(inst.name, { meta, pid, status, migrate }));
        // QEMU's own account of a finished migration, kept in the RPC log (`sim log`).
        if (migrate.status === 'completed') ctx.detail = migrationSummary(migrate);
        else if (migrate.status === 'failed') ctx.detail = `failed: ${migrate['error-desc'] ?? 'no error given'}`;
        return statusPayload(migrate);
      },
      true,
    );
  }

  /**
   * Ganeti's FinalizeMigrationDst. Success: the destination must run (a non-live migration leaves it
   * paused: `cont`); it records the source's runtime. Failure: the incoming process is killed,
   * without needing anything of it (Ganeti's master needs the runtime file here, which it lacks).
   */
  async instanceFinalizeMigrationDst(inst: RpcInstance, migrationInfo: string, success: boolean): Promise<void> {
    const P = 'Failed to finalize migration on the target node: ';
    return this.rpc('instance_finalize_migration_dst', inst.name, success ? 'success' : 'failure', P, async (ctx) => {
      const found = this.locate(inst.name);
      if (!success) {
        if (found?.pid) {
          await killPid(found.pid);
          this.removeFiles(found.meta);
        } else this.dropIfStale(found);
        ctx.edit(mirror(inst.name, null));
        return;
      }
      if (!found?.pid) {
        this.dropIfStale(found);
        ctx.edit(mirror(inst.name, null));
        return fail(`${P}instance ${inst.name} is not running on ${this.node}`);
      }
      const { meta, pid } = found as { meta: QemuMeta; pid: number };
      const status = await this.qmp(meta, async (q) => {
        const deadline = Date.now() + this.switchoverWaitMs;
        let st = await runState(q);
        // The source reported completion; the destination may need a moment to switch over.
        while ((st === 'inmigrate' || st === 'finish-migrate') && Date.now() < deadline) {
          await sleep(20);
          st = await runState(q);
        }
        if (st === 'paused') {
          await q.execute('cont');
          st = await runState(q);
        }
        return st;
      });
      ctx.edit(mirror(inst.name, { meta, pid, status }));
      if (status !== 'running') return fail(`${P}instance ${inst.name} did not become running (status ${status})`);
      meta.runtime = migrationInfo;
      delete meta.incoming;
      delete meta.migration;
      this.writeMeta(meta);
      ctx.edit(mirror(inst.name, { meta, pid, status }));
    });
  }

  /**
   * Ganeti's FinalizeMigrationSource. Success: QEMU must report the migration completed (with the
   * return path, the destination has then loaded the state) before the source is told to `quit`.
   * Failure: a migration still running is cancelled, and a paused source is resumed (`cont`).
   */
  async instanceFinalizeMigrationSrc(inst: RpcInstance, success: boolean, _live: boolean): Promise<void> {
    const P = 'Failed to finalize the migration on the source node: ';
    return this.rpc('instance_finalize_migration_src', inst.name, success ? 'success' : 'failure', P, async (ctx) => {
      const found = this.locate(inst.name);
      if (!found?.pid) {
        // Already gone: nothing left to finalize.
        this.dropIfStale(found);
        ctx.edit((n) => {
          delete n.processes[inst.name];
          if (success) delete n.links[inst.name];
        });
        return;
      }
      const { meta, pid } = found as { meta: QemuMeta; pid: number };
      if (success) {
        const { migrate, status } = await this.qmp(meta, async (q) => ({
          migrate: await q.execute<QueryMigrate>('query-migrate'),
          status: await runState(q),
        }));
        if (migrate.status !== 'completed' || status !== 'postmigrate') {
          ctx.edit(mirror(inst.name, { meta, pid, status, migrate }));
          return fail(`${P}migration is ${migrate.status ?? 'not running'} (source ${status}), refusing to stop the source`);
        }
        await this.quit(meta, pid);
        this.removeFiles(meta);
        ctx.edit((n) => {
          delete n.processes[inst.name];
          delete n.links[inst.name];
        });
        return;
      }
      const status = await this.qmp(meta, async (q) => {
        let m = await q.execute<QueryMigrate>('query-migrate');
        if (m.status && (IN_FLIGHT.has(m.status) || m.status === 'cancelling')) {
          if (m.status !== 'cancelling') await q.execute('migrate_cancel');
          const deadline = Date.now() + 10_000;
          while (m.status && (IN_FLIGHT.has(m.status) || m.status === 'cancelling') && Date.now() < deadline) {
            await sleep(20);
            m = await q.execute<QueryMigrate>('query-migrate');
          }
        }
        let st = await runState(q);
        if (st === 'paused' || st === 'postmigrate') {
          await q.execute('cont');
          st = await runState(q);
        }
        return st;
      });
      delete meta.migration;
      this.writeMeta(meta);
      ctx.edit(mirror(inst.name, { meta, pid, status }));
    });
  }

  async instanceBalloonMemory(inst: RpcInstance, memory: number): Promise<void> {
    const P = `Cannot balloon instance ${inst.name}: `;
    return this.rpc('instance_balloon_memory', inst.name, String(memory), P, async (ctx) => {
      const o = await this.observe(inst.name);
      if (!o || o.status === 'inmigrate') return fail(`${P}not running on ${this.node}`);
      await this.qmp(o.meta, (q) => q.execute('balloon', { value: memory * MiB }));
      // The device model's -m stays (the destination must match it); the balloon target is the memory.
      const rt = parseRuntime(o.meta.runtime);
      o.meta.runtime = JSON.stringify({ ...rt, memory });
      o.meta.memory = memory;
      this.writeMeta(o.meta);
      ctx.edit(mirror(inst.name, o));
    });
  }

  /**
   * Soft shutdown: ACPI power button (`system_powerdown`, repeated every 5 s, as Ganeti does) until
   * the timeout, then SIGKILL. Not running: nothing to do.
   */
  async instanceShutdown(inst: RpcInstance, timeoutSec: number, reason: string): Promise<void> {
    const P = `Failed to stop instance ${inst.name}: `;
    return this.rpc('instance_shutdown', inst.name, reason || undefined, P, async (ctx) => {
      const found = this.locate(inst.name);
      if (found?.pid) {
        const { meta, pid } = found as { meta: QemuMeta; pid: number };
        let gone = false;
        const deadline = Date.now() + timeoutSec * 1000;
        while (!gone && Date.now() < deadline) {
          await this.qmp(meta, (q) => q.execute('system_powerdown')).catch(() => undefined);
          gone = await waitGone(pid, Math.max(0, Math.min(5000, deadline - Date.now())));
        }
        if (!gone) {
          ctx.detail = `forced after ${timeoutSec} s${reason ? `; ${reason}` : ''}`;
          gone = await killPid(pid);
        }
        if (!gone) return fail(`Could not shutdown instance '${inst.name}' even by destroy`);
        this.removeFiles(found.meta);
      } else this.dropIfStale(found);
      ctx.edit((n) => {
        delete n.processes[inst.name];
        delete n.links[inst.name];
      });
    });
  }

  async instanceStart(inst: RpcInstance, reason: string): Promise<void> {
    const P = 'Hypervisor error: ';
    return this.rpc('instance_start', inst.name, reason || undefined, P, async (ctx) => {
      const o = await this.observe(inst.name);
      if (o && o.status !== 'inmigrate') {
        ctx.edit(mirror(inst.name, o)); // already running: a retried start changes nothing
        ctx.edit((n) => void (n.links[inst.name] = true));
        return;
      }
      if (o) {
        await killPid(o.pid); // a leftover incoming process holds nothing worth keeping
        this.removeFiles(o.meta);
      }
      this.ensureImages(inst);
      this.checkDisks(inst, P);
      const free = this.freeMemory(inst.name);
      if (inst.memory > free) return fail(`${P}not enough memory (need ${inst.memory} MiB, free ${free} MiB)`);
      const rt = newRuntime(inst, { accel: this.accel, kernel: this.kernel(), sharedDir: this.sharedDir });
      const meta = await this.launch(inst.name, rt.args, rt);
      const status = await this.qmp(meta, (q) => runState(q));
      ctx.edit(mirror(inst.name, { meta, pid: meta.pid!, status }));
      ctx.edit((n) => void (n.links[inst.name] = true));
    });
  }

  // ---- block devices and DRBD: the simulated node, after the mirror caught up ----------------

  async blockdevFind(inst: RpcInstance, diskIndex: number): Promise<BlockdevStatus | null> {
    return this.sim.blockdevFind(inst, diskIndex);
  }

  async blockdevClose(inst: RpcInstance): Promise<void> {
    await this.reapIfDead(inst.name);
    return this.sim.blockdevClose(inst);
  }

  async blockdevOpen(inst: RpcInstance, exclusive: boolean): Promise<void> {
    return this.sim.blockdevOpen(inst, exclusive);
  }

  async blockdevShutdown(inst: RpcInstance): Promise<void> {
    await this.reapIfDead(inst.name);
    return this.sim.blockdevShutdown(inst);
  }

  async blockdevAssemble(inst: RpcInstance, asPrimary: boolean): Promise<void> {
    return this.sim.blockdevAssemble(inst, asPrimary);
  }

  async drbdDisconnectNet(inst: RpcInstance): Promise<void> {
    return this.sim.drbdDisconnectNet(inst);
  }

  async drbdAttachNet(inst: RpcInstance, multimaster: boolean): Promise<void> {
    return this.sim.drbdAttachNet(inst, multimaster);
  }

  async drbdWaitSync(inst: RpcInstance): Promise<WaitSyncPayload> {
    return this.sim.drbdWaitSync(inst);
  }
}

function migrationCaps() {
  return [
    { capability: 'events', state: true },
    // Without it a destination that rejects the state leaves the source "completed" and the guest nowhere.
    { capability: 'return-path', state: true },
  ];
}

async function runState(q: QmpClient): Promise<string> {
  return (await q.execute<{ status: string }>('query-status')).status;
}

/** Any failure as the NodeRpcError Ganeti would report; an unreachable monitor is transient. */
function toRpcError(e: unknown, prefix: string): NodeRpcError {
  if (e instanceof NodeRpcError) return e;
  if (e instanceof QmpError) return new NodeRpcError(`${prefix}${e.desc}`);
  if (e instanceof QmpUnavailable || e instanceof LockTimeoutError) return new NodeRpcError(`${prefix}${e.message}`, true);
  return new NodeRpcError(`${prefix}${e instanceof Error ? e.message : String(e)}`);
}
