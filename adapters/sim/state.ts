/**
 * The simulated cluster's hardware: per node the hypervisor's processes and the DRBD devices, with
 * the dynamics that matter to migration (DRBD connection states and time-based resync, QEMU-like
 * memory transfer). The state is shared by every node agent process (rows of an SQLite database,
 * `hardware.ts`); time-based quantities are stored as start times and rates and derived on read
 * (`advance`), so nothing needs a ticking process and a crashed agent loses nothing.
 *
 * All times in the state are *simulated* milliseconds: sim = simBase + (real − realBase) × factor.
 */

import type { SimMigrationBase } from './migration-model.js';
import { migrationProgress } from './migration-model.js';

export type DrbdRole = 'Primary' | 'Secondary';
export type DrbdConnection = 'Unconfigured' | 'StandAlone' | 'WFConnection' | 'Connected' | 'SyncSource' | 'SyncTarget';
export type DrbdDiskState = 'Diskless' | 'Inconsistent' | 'Outdated' | 'UpToDate';

export interface SimDrbd {
  instance: string;
  diskIndex: number;
  size: number;
  peerNode: string;
  peerMinor: number;
  port: number;
  /** Backing storage attached (the device is assembled). */
  attached: boolean;
  role: DrbdRole;
  /** Network configuration; null = StandAlone. */
  net: null | { dualPrimary: boolean };
  disk: DrbdDiskState;
  /** MiB this side holds that the peer does not (DRBD's bitmap). */
  outOfSync: number;
  /** Resync in progress on this connection (mirrored on both ends). */
  resync: null | { role: 'SyncSource' | 'SyncTarget'; startedAt: number; total: number; rate: number };
}

export interface SimMigration {
  targetNode: string;
  targetIp: string;
  port: number;
  live: boolean;
  startedAt: number;
  ram: number;
  bandwidth: number;
  dirtyRate: number;
  /** `postcopy-active`: the destination runs, the source is paused (past the point of no return). */
  status: 'active' | 'postcopy-active' | 'completed' | 'failed' | 'cancelled';
  endedAt?: number;
  error?: string;
  /** The downtime limit, ms (unset in migrations recorded before it existed: no limit). */
  downtimeMs?: number;
  /** QEMU's auto-converge capability. */
  autoConverge?: boolean;
  /** QEMU's postcopy-ram capability (start-postcopy needs it). */
  postcopy?: boolean;
  /** The last checkpoint of the transfer (migration-model.ts); unset: its start. */
  base?: SimMigrationBase;
}

export interface SimProcess {
  /** QEMU's run states, reduced: incoming = `inmigrate`, paused covers `paused` and `postmigrate`. */
  state: 'running' | 'paused' | 'incoming';
  pausedBy?: 'stop' | 'postmigrate';
  memory: number;
  vcpus: number;
  /** Serialized runtime (Ganeti's KVM runtime file: the command line, NICs, hvparams, disks). */
  runtime: string;
  /** `postcopy`: accepted with the postcopy-ram capability. */
  incoming?: { port: number; postcopy?: boolean };
  migration?: SimMigration;
  /** Guest writes to RAM, MiB/s (what makes live migration send pages again). */
  dirtyRate: number;
  /** The guest ignores ACPI power-down: a shutdown waits for its timeout, then kills. */
  ignoresAcpi?: boolean;
}

export interface SimNodeHw {
  name: string;
  secondaryIp: string;
  memoryTotal: number;
  hvVersion: string;
  bridges: string[];
  processes: Record<string, SimProcess>;
  drbd: Record<string, SimDrbd>;
  /** sharedfile disks opened on this node, keyed by disk uuid. */
  shared: Record<string, { instance: string; mode: 'shared' | 'exclusive' }>;
  /** Instances whose disk symlinks exist on this node. */
  links: Record<string, true>;
  /** False while the node is powered off (it answers nothing). */
  powered?: boolean;
}

export interface SimFault {
  id: number;
  rpc: string;
  node?: string;
  mode: 'transient' | 'permanent' | 'hang' | 'hang-after';
  /** Calls to let through before the fault applies. */
  skip: number;
  /** How many more times it applies; null = until cleared. */
  remaining: number | null;
  hits: number;
}

/** The RPCs that change nothing on a node (the rest are an operation's state-changing steps in the log). */
export const READ_ONLY_RPCS: ReadonlySet<string> = new Set([
  'node_info',
  'instance_list',
  'instance_info',
  'instance_migratable',
  'bridges_exist',
  'blockdev_find',
  'migration_info',
  'instance_get_migration_status',
  'drbd_wait_sync',
]);

export interface SimLogEntry {
  seq: number;
  /** Real time (ms since epoch). */
  at: number;
  node: string;
  rpc: string;
  instance?: string;
  detail?: string;
  outcome: 'ok' | 'error' | 'fault';
  error?: string;
}

export interface SimParams {
  /** Simulated seconds per real second. Node-side waits and timeouts shrink by the same factor. */
  timeFactor: number;
  /** DRBD resync rate, MiB/s (Ganeti's default resync-rate is 61440 KiB/s). */
  syncRate: number;
  /** Guest disk writes, MiB/s: what a Primary without its peer accumulates out of sync. */
  diskWriteRate: number;
  /** Extra resync after every reconnection (activity-log extents), MiB. */
  reconnectResync: number;
  /** Default guest RAM dirtying rate for live migration, MiB/s. */
  guestDirtyRate: number;
  /** Memory the node itself uses, MiB. */
  dom0Memory: number;
  /** First port of the per-node incoming-migration port pool. */
  migrationBasePort: number;
  /** Entries the RPC log keeps (default LOG_LIMIT); a large cluster's benchmark keeps fewer. */
  logLimit?: number;
  /**
   * How long `drbd_attach_net` waits for its peer to connect, simulated seconds (default Ganeti's
   * DRBD_RECONNECT_TIMEOUT_SEC, 120). Like every node-side wait it shrinks by the time factor, but the
   * peer's call comes from another agent whose turn depends on real CPU: a test or benchmark that
   * runs hundreds of migrations on two cores at a high time factor gives the peer longer.
   */
  reconnectTimeoutSec?: number;
}

/** Ganeti's wait for a DRBD peer to connect in AttachNet, seconds. */
export const DRBD_RECONNECT_TIMEOUT_SEC = 120;

export const DEFAULT_SIM_PARAMS: SimParams = {
  timeFactor: 1,
  syncRate: 60,
  diskWriteRate: 1,
  reconnectResync: 0,
  guestDirtyRate: 2,
  dom0Memory: 1024,
  migrationBasePort: 8102,
};

export interface SimState {
  version: 1;
  clock: { realBase: number; simBase: number; factor: number };
  /**
   * Sim time up to which a device without a clock of its own (`AdvanceView.clocks`) has its
   * out-of-sync data accounted: hardware created or imported whole starts from it.
   */
  advancedTo: number;
  params: SimParams;
  nodes: Record<string, SimNodeHw>;
  faults: SimFault[];
  nextFaultId: number;
  log: SimLogEntry[];
  logSeq: number;
}

export const LOG_LIMIT = 5000;

export function simNow(s: SimState, realNow = Date.now()): number {
  return s.clock.simBase + (realNow - s.clock.realBase) * s.clock.factor;
}

/** Changes the time factor without jumping simulated time. */
export function setTimeFactor(s: SimState, factor: number, realNow = Date.now()): void {
  s.clock = { simBase: simNow(s, realNow), realBase: realNow, factor };
  s.params.timeFactor = factor;
}

export function peerOf(s: SimState, d: SimDrbd): SimDrbd | undefined {
  return s.nodes[d.peerNode]?.drbd[String(d.peerMinor)];
}

/** Both ends have a network configuration: the link is up. */
export function isConnected(s: SimState, d: SimDrbd): boolean {
  const p = peerOf(s, d);
  return !!(d.attached && d.net && p?.attached && p.net);
}

export function connectionState(s: SimState, d: SimDrbd): DrbdConnection {
  if (!d.attached) return 'Unconfigured';
  if (!d.net) return 'StandAlone';
  if (!isConnected(s, d)) return 'WFConnection';
  return d.resync ? d.resync.role : 'Connected';
}

export function resyncPercent(d: SimDrbd, now: number): number | null {
  if (!d.resync) return null;
  const done = ((now - d.resync.startedAt) / 1000) * d.resync.rate;
  return Math.min(100, (100 * done) / d.resync.total);
}

/**
 * Called when `d` (just given a network configuration) finds its peer configured too: DRBD's
 * handshake. Two Primaries without allow-two-primaries, or changes on both sides, is a split brain:
 * both ends drop to StandAlone. Otherwise a resync runs from the side with the newer data.
 */
export function handshake(s: SimState, d: SimDrbd, now: number): void {
  const p = peerOf(s, d);
  if (!p || !isConnected(s, d)) return;
  const bothDual = !!(d.net?.dualPrimary && p.net?.dualPrimary);
  const splitBrain =
    (d.role === 'Primary' && p.role === 'Primary' && !bothDual) ||
    (d.disk === 'UpToDate' && p.disk === 'UpToDate' && d.outOfSync > 0 && p.outOfSync > 0);
  if (splitBrain) {
    d.net = null;
    p.net = null;
    return;
  }
  let source: SimDrbd | null = null;
  let target: SimDrbd | null = null;
  if (d.disk === 'UpToDate' && p.disk !== 'UpToDate') [source, target] = [d, p];
  else if (p.disk === 'UpToDate' && d.disk !== 'UpToDate') [source, target] = [p, d];
  else if (d.disk === 'UpToDate' && p.disk === 'UpToDate') {
    if (d.outOfSync > 0) [source, target] = [d, p];
    else if (p.outOfSync > 0) [source, target] = [p, d];
    else if (s.params.reconnectResync > 0) [source, target] = d.role === 'Primary' ? [d, p] : [p, d];
  }
  if (!source || !target) return;
  const total = Math.max(target.disk === 'Inconsistent' ? target.size : source.outOfSync, s.params.reconnectResync, 0.001);
  const rate = s.params.syncRate;
  source.resync = { role: 'SyncSource', startedAt: now, total, rate };
  target.resync = { role: 'SyncTarget', startedAt: now, total, rate };
  target.disk = 'Inconsistent';
}

/** Drops the link of `d` (and so of its peer): an interrupted resync leaves its remainder out of sync. */
export function dropLink(s: SimState, d: SimDrbd, now: number): void {
  const p = peerOf(s, d);
  for (const x of p ? [d, p] : [d]) {
    if (x.resync?.role === 'SyncSource') {
      const done = ((now - x.resync.startedAt) / 1000) * x.resync.rate;
      x.outOfSync = Math.max(x.outOfSync, x.resync.total - done, 0.001);
    }
    x.resync = null;
  }
}

/** Migration timing (QEMU pre-copy, auto-converge, post-copy): migration-model.ts. */
export { migrationProgress } from './migration-model.js';

/**
 * What a mutation loaded: the nodes (null: all of them) and each DRBD device's own clock. Time-based
 * state is advanced per unit (a migration and its two ends, a DRBD pair) and only for units whose
 * nodes are all loaded, so that an RPC on one node can load that node and its peers alone.
 */
export interface AdvanceView {
  /** The node names loaded (a name without a row counts: that node is known not to exist). */
  nodes: ReadonlySet<string> | null;
  /**
   * `clockKey(node, minor)` → sim time up to which that device's out-of-sync data is accounted. Only
   * devices accumulating have one; a device without one is accounted up to `advancedTo`.
   */
  clocks: Map<string, number>;
}

export const clockKey = (node: string, minor: string): string => `${node}\t${minor}`;

export function inView(v: AdvanceView, node: string): boolean {
  return v.nodes === null || v.nodes.has(node);
}

/** Every DRBD device of `instance` on `node` has its peer loaded (so its connection can be judged). */
export function peersInView(s: SimState, v: AdvanceView, node: string, instance: string): boolean {
  const n = s.nodes[node];
  return !n || Object.values(n.drbd).every((d) => d.instance !== instance || inView(v, d.peerNode));
}

/** A Primary whose guest runs without a connected peer: it accumulates out-of-sync data. */
export function accumulates(s: SimState, node: SimNodeHw, d: SimDrbd): boolean {
  return d.role === 'Primary' && node.processes[d.instance]?.state === 'running' && !isConnected(s, d);
}

/**
 * Brings the time-dependent state of the loaded units up to `now`: migrations complete or fail,
 * resyncs finish, and Primaries without a connected peer accumulate out-of-sync data (from their
 * own clock). A unit with a node not loaded is left as it is (it is advanced when it is loaded).
 */
export function advance(s: SimState, now: number, v: AdvanceView): void {
  for (const [nodeName, node] of Object.entries(s.nodes)) {
    for (const [name, proc] of Object.entries(node.processes)) {
      const m = proc.migration;
      if (!m || (m.status !== 'active' && m.status !== 'postcopy-active')) continue;
      if (!inView(v, m.targetNode) || !peersInView(s, v, nodeName, name) || !peersInView(s, v, m.targetNode, name)) continue;
      const dst = s.nodes[m.targetNode]?.processes[name];
      // In post-copy the destination runs (it no longer listens).
      const listening =
        m.status === 'postcopy-active' ? dst && dst.state !== 'incoming' : dst?.state === 'incoming' && dst.incoming?.port === m.port;
      if (!dst || !listening) {
        m.status = 'failed';
        m.endedAt = now;
        m.error = 'Unable to write to socket: Connection reset by peer';
        continue;
      }
      const progress = migrationProgress(m, now);
      if (progress.done) {
        m.endedAt = now;
        proc.state = 'paused';
        proc.pausedBy = 'postmigrate';
        // QEMU resumes the destination itself after a live migration (it already runs in post-copy);
        // a stopped source stays stopped.
        const running = m.status === 'postcopy-active' || (m.live && progress.phase !== 'stopcopy');
        dst.state = running ? 'running' : 'paused';
        if (!running) dst.pausedBy = 'stop';
        delete dst.incoming;
        m.status = 'completed';
      }
    }
    for (const [minor, d] of Object.entries(node.drbd)) {
      if (!inView(v, d.peerNode)) continue;
      if (d.resync && d.resync.role === 'SyncTarget') {
        const pct = resyncPercent(d, now) ?? 0;
        if (pct >= 100) {
          const p = peerOf(s, d);
          d.resync = null;
          d.disk = 'UpToDate';
          d.outOfSync = 0;
          if (p) {
            p.resync = null;
            p.outOfSync = 0;
          }
        }
      }
      if (accumulates(s, node, d)) {
        const from = Math.min(v.clocks.get(clockKey(nodeName, minor)) ?? s.advancedTo, now);
        d.outOfSync += Math.max(0, (now - from) / 1000) * s.params.diskWriteRate;
      }
    }
  }
}

/**
 * After a mutation at `now`: every loaded device that accumulates out-of-sync data is accounted up to
 * `now`, the others need no clock (they start one when they begin to accumulate).
 */
export function settleClocks(s: SimState, now: number, v: AdvanceView): void {
  for (const k of [...v.clocks.keys()]) {
    const [node, minor] = k.split('\t') as [string, string];
    if (inView(v, node) && !s.nodes[node]?.drbd[minor]) v.clocks.delete(k);
  }
  for (const [nodeName, node] of Object.entries(s.nodes)) {
    for (const [minor, d] of Object.entries(node.drbd)) {
      if (!inView(v, d.peerNode)) continue;
      if (accumulates(s, node, d)) v.clocks.set(clockKey(nodeName, minor), now);
      else v.clocks.delete(clockKey(nodeName, minor));
    }
  }
}
