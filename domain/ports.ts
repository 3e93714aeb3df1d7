/**
 * Port interfaces between the orchestration and the world: a node's RPC surface (implemented by the
 * simulated cluster and by the QEMU driver) and the cluster configuration store; and the two ports a
 * hypervisor driver is composed with (implemented by the simulator for the QEMU driver): the node's
 * storage side and the hardware mirror.
 *
 * Every node RPC is idempotent: called again after a crash it observes what is true and continues;
 * it never applies an effect twice. A failure the node reports is a `NodeRpcError`; a failure to get
 * an answer at all is a `NodeRpcError` with `transient: true`.
 */
import type { RpcInstance } from './instance.js';
import type { HookPath, HookPhase, HookScriptResult } from './hook-env.js';
import type { InstanceInfoPayload, NodeInfoPayload } from './prereq.js';
import type { ClusterConfig, ClusterSnapshot, EvacuationLimits, Instance, Node, Reservation } from './types.js';

export class NodeRpcError extends Error {
  override readonly name = 'NodeRpcError';
  constructor(
    message: string,
    readonly transient = false,
  ) {
    super(message);
  }
}

/** A configuration write that cannot be done as asked (a compare-and-set conflict, an unknown object). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    /** `conflict`: a compare-and-set saw another value; `not-found`: no such object. */
    readonly kind: 'conflict' | 'not-found' | 'invalid',
  ) {
    super(message);
  }
}

/** The configuration store is momentarily unable to answer (a lock held too long); retried. */
export class StoreBusyError extends Error {
  override readonly name = 'StoreBusyError';
}

/** QEMU's migration states as Ganeti reports them, plus `none` (no migration known). */
export type HvMigrationStatus = 'setup' | 'active' | 'postcopy-active' | 'completed' | 'failed' | 'cancelled' | 'none';

export interface MigrationStatusPayload {
  status: HvMigrationStatus;
  /** MiB transferred so far; may exceed totalRam (dirtied pages are sent again). */
  transferredRam?: number;
  totalRam?: number;
  postcopyStatus?: 'postcopy-active';
  /** The hypervisor's error text for a failed migration. */
  error?: string;
  /** MiB still to send (the dirty set, QEMU's `ram.remaining`). */
  remainingRam?: number;
  /** MiB/s the guest dirties (QEMU's `ram.dirty-pages-rate` × page size). */
  dirtyRate?: number;
  /** The auto-converge vCPU throttle, percent (QEMU's `cpu-throttle-percentage`). */
  throttlePercent?: number;
  /** The downtime the switch-over may take now, ms (QEMU's `downtime-limit`). */
  downtimeLimitMs?: number;
  /** Passes over the guest memory so far (QEMU's `ram.dirty-sync-count`). */
  passes?: number;
}

/**
 * How one migration is tuned (from its policy, domain/policy.ts). Without it, instance_migrate does
 * what it always did: bandwidth and downtime from the instance's hvparams, no capabilities.
 */
export interface HvMigrationSettings {
  /** MiB/s. */
  bandwidth: number;
  downtimeMs: number;
  /** QEMU's `auto-converge` capability. */
  autoConverge: boolean;
  /** Enable the `postcopy-ram` capability (the switch itself is `instanceMigrationControl` start-postcopy). */
  postcopy: boolean;
}

/** What accept_instance needs of the settings: QEMU wants `postcopy-ram` on the destination too. */
export interface HvAcceptSettings {
  postcopy: boolean;
}

/**
 * A change to a running outgoing migration, sent to its source node. Idempotent: already in post-copy,
 * already paused, the same downtime — all succeed. Refused (NodeRpcError) when no migration of the
 * instance is active.
 * - `start-postcopy`: QEMU's `migrate-start-postcopy` (needs the `postcopy-ram` capability); from
 *   then on the destination holds the only current state.
 * - `pause-source`: stop the guest on the source so the transfer completes (a non-live finish).
 * - `set-downtime`: the downtime the switch-over may take, ms.
 */
export type MigrationControl = { action: 'start-postcopy' } | { action: 'pause-source' } | { action: 'set-downtime'; downtimeMs: number };

export interface BlockdevStatus {
  isDegraded: boolean;
  syncPercent: number | null;
  ldisk: 'OKAY' | 'SYNC' | 'FAULTY' | 'UNKNOWN';
}

export interface WaitSyncPayload {
  allDone: boolean;
  minPercent: number;
}

export interface MigrationTarget {
  node: string;
  /** The target's secondary (replication) IP. */
  ip: string;
  /** The port the target's incoming process listens on (from accept_instance). */
  port: number;
}

/** Ganeti's node RPCs (lib/rpc_defs.py) used by migration, failover and cleanup. */
export interface NodeRpc {
  readonly node: string;
  nodeInfo(): Promise<NodeInfoPayload>;
  instanceList(): Promise<string[]>;
  instanceInfo(inst: RpcInstance): Promise<InstanceInfoPayload | null>;
  bridgesExist(bridges: string[]): Promise<void>;
  instanceMigratable(inst: RpcInstance): Promise<void>;
  migrationInfo(inst: RpcInstance): Promise<string>;
  acceptInstance(inst: RpcInstance, migrationInfo: string, targetIp: string, settings?: HvAcceptSettings): Promise<{ port: number }>;
  instanceMigrate(inst: RpcInstance, target: MigrationTarget, live: boolean, settings?: HvMigrationSettings): Promise<void>;
  instanceGetMigrationStatus(inst: RpcInstance): Promise<MigrationStatusPayload>;
  /** Changes the running outgoing migration (see MigrationControl); answers the status after it. */
  instanceMigrationControl(inst: RpcInstance, control: MigrationControl): Promise<MigrationStatusPayload>;
  /**
   * Optional (the QEMU driver): the status, answered as soon as the hypervisor reports the end of the
   * transfer (or the switch to post-copy), at the latest after `timeoutMs`. The master's wait between
   * status polls uses it when the node offers it, and sleeps otherwise.
   */
  instanceWaitMigrationEvent?(inst: RpcInstance, timeoutMs: number): Promise<MigrationStatusPayload>;
  instanceFinalizeMigrationSrc(inst: RpcInstance, success: boolean, live: boolean): Promise<void>;
  instanceFinalizeMigrationDst(inst: RpcInstance, migrationInfo: string, success: boolean): Promise<void>;
  instanceBalloonMemory(inst: RpcInstance, memory: number): Promise<void>;
  instanceShutdown(inst: RpcInstance, timeoutSec: number, reason: string): Promise<void>;
  instanceStart(inst: RpcInstance, reason: string): Promise<void>;
  blockdevFind(inst: RpcInstance, diskIndex: number): Promise<BlockdevStatus | null>;
  blockdevClose(inst: RpcInstance): Promise<void>;
  blockdevOpen(inst: RpcInstance, exclusive: boolean): Promise<void>;
  blockdevShutdown(inst: RpcInstance): Promise<void>;
  blockdevAssemble(inst: RpcInstance, asPrimary: boolean): Promise<void>;
  drbdDisconnectNet(inst: RpcInstance): Promise<void>;
  drbdAttachNet(inst: RpcInstance, multimaster: boolean): Promise<void>;
  drbdWaitSync(inst: RpcInstance): Promise<WaitSyncPayload>;
}

/** The RPCs (each a node activity); the optional event wait is the driver's, used inside `waitForMigration`. */
export type NodeRpcMethod = Exclude<keyof NodeRpc, 'node' | 'instanceWaitMigrationEvent'>;

/**
 * The storage side of a node, for a hypervisor driver that does not own it: the block-device and
 * DRBD RPCs, and bridges_exist (the QEMU driver delegates them to the simulated node).
 */
export type NodeStorage = Pick<
  NodeRpc,
  | 'bridgesExist'
  | 'blockdevFind'
  | 'blockdevClose'
  | 'blockdevOpen'
  | 'blockdevShutdown'
  | 'blockdevAssemble'
  | 'drbdDisconnectNet'
  | 'drbdAttachNet'
  | 'drbdWaitSync'
>;

/** A hypervisor process as a driver observed it (the run state reduced as Ganeti reports it). */
export interface ObservedProcess {
  /** `incoming`: waiting for a migration (QEMU's `inmigrate`); `paused` covers `paused` and `postmigrate`. */
  state: 'running' | 'paused' | 'incoming';
  pausedBy?: 'stop' | 'postmigrate';
  /** Current memory (the balloon target), MiB. */
  memory: number;
  vcpus: number;
  /** Serialized runtime (what migration_info answers). */
  runtime: string;
  incoming?: { port: number };
  /** The outgoing migration the driver started, as far as the hypervisor reports one. */
  migration?: {
    targetNode: string;
    targetIp: string;
    port: number;
    live: boolean;
    status: 'active' | 'completed' | 'failed' | 'cancelled';
    error?: string;
  };
}

/** One change to a node's mirrored process table. */
export type MirrorEdit =
  /** The instance's process as observed now; null: none runs. */
  | { kind: 'process'; instance: string; process: ObservedProcess | null }
  /** The instance's disk symlinks exist on the node (or not). */
  | { kind: 'links'; instance: string; present: boolean }
  /** Every process entry not named here is gone. */
  | { kind: 'keep-only'; instances: string[] };

/** An RPC as the node's log records it. */
export interface MirrorLogEntry {
  rpc: string;
  instance?: string;
  detail?: string;
  outcome: 'ok' | 'error';
  error?: string;
}

/** What a hypervisor driver reads of its node in the shared hardware description. */
export interface MirroredNode {
  /** False while the node is powered off: the driver kills its processes and answers nothing. */
  powered: boolean;
  memoryTotal: number;
  /** Memory the node itself uses, MiB. */
  dom0Memory: number;
  secondaryIp: string;
  /** First port of the node's incoming-migration port pool. */
  migrationBasePort: number;
  /** Instances the process table lists. */
  processes: string[];
  /** DRBD devices by minor, as the hypervisor needs them to open a disk. */
  drbd: Readonly<Record<string, { instance: string; attached: boolean; role: 'Primary' | 'Secondary' }>>;
  /** sharedfile disks opened on the node, by disk uuid. */
  shared: Readonly<Record<string, unknown>>;
}

/**
 * Where a hypervisor driver that shares its node with a storage side it does not own records the
 * process table it observed (so that the storage side, status views and invariant checks see the
 * real processes), and reads the node facts it needs. Bound to one node.
 */
export interface HardwareMirror {
  /** False once the hardware description is gone (the cluster was removed). */
  exists(): boolean;
  /** The node now; null if the description has no such node. */
  node(): MirroredNode | null;
  /** Whether applying `edits` would change the node's process table. */
  wouldChange(edits: MirrorEdit[]): boolean;
  /** Applies `edits` and appends `log` to the node's RPC log, in one atomic write. */
  apply(edits: MirrorEdit[], log?: MirrorLogEntry): Promise<void>;
}

/** `blockdevClose` → `blockdev_close`: the Ganeti RPC name, used by fault injection and logs. */
export function rpcName(method: string): string {
  return method.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export interface ReserveMemoryRequest {
  opId: string;
  node: string;
  instance: string;
  /** Ganeti checks the instance's minmem. */
  needed: number;
  /** Reserve up to this much (the instance's maxmem). */
  wanted: number;
  /** Free memory the node reported (node_info). */
  reportedFree: number;
  workflowId: string;
  runId: string;
}

export interface SlotRequest {
  /** The lease id (one per node-operation run and instance; idempotent). */
  id: string;
  workflowId: string;
  runId: string;
  instance: string;
  source: string;
  target: string | null;
  /** The requesting node operation's limits, applied to every lease in the cluster. */
  limits: EvacuationLimits;
}

/** A slot refused: which limit is full (`cluster`: C, `source`: O, `target`: I). */
export type SlotAnswer = { granted: true } | { granted: false; limit: 'cluster' | 'source' | 'target'; reason: string };

/** The cluster configuration (Ganeti's config.data), persisted by the orchestrator. */
/**
 * Which part of the configuration an operation loads (issue 12: snapshots are slices). An omitted
 * list means all of them; names that are not known are left out (the caller's prerequisites say so).
 */
export interface SnapshotScope {
  instances?: string[];
  nodes?: string[];
  /** Only instances whose primary node is this one (with `instances`, both must hold). */
  primaryOn?: string;
}

export interface ConfigStore {
  /** The cluster parameters plus the nodes and instances `scope` names (all without a scope). */
  snapshot(scope?: SnapshotScope): Promise<ClusterSnapshot>;
  config(): Promise<ClusterConfig>;
  /** Memory reserved per node by operations other than `exceptOpId`. */
  reservedMemory(exceptOpId?: string): Promise<Record<string, number>>;
  /**
   * Atomically: free = reportedFree − other reservations on the node; if `needed` ≤ free, reserve
   * min(wanted, free) for `opId` (idempotent per opId). Returns free and what was reserved (0 if not).
   */
  reserveMemory(req: ReserveMemoryRequest): Promise<{ free: number; reserved: number }>;
  releaseReservation(opId: string): Promise<void>;
  /** The memory reservations of running operations, by operation id (the configuration's `reservations`). */
  reservations(): Promise<Record<string, Reservation>>;
  /**
   * Atomically: drops the leases of node operations that no longer run, then grants `req` if the
   * leases of all node operations leave room under its limits (C in the cluster, O from its source,
   * I to its target). Idempotent per lease id.
   */
  acquireSlot(req: SlotRequest): Promise<SlotAnswer>;
  releaseSlot(id: string): Promise<void>;
  /** Drops reservations (on `nodes`, or on any node) of operations that no longer run; returns their ids. */
  pruneReservations(nodes?: string[]): Promise<string[]>;
  /** Compare-and-set of the instance's primary node (idempotent when already `newPrimary`). */
  setInstancePrimary(instance: string, expected: string, newPrimary: string): Promise<Instance>;
  setDisksActive(instance: string, active: boolean): Promise<Instance>;
  modifyNode(node: string, change: Partial<Pick<Node, 'offline' | 'drained'>>): Promise<Node>;
  modifyInstance(instance: string, change: Partial<Pick<Instance, 'adminState'>>): Promise<Instance>;
}

/** What an `abort` request to a running operation answered. */
export interface AbortAnswer {
  accepted: boolean;
  message: string;
}

/**
 * Control of other running operations (a node operation aborts its children with it): sends the
 * `abort` update to the run of `workflowId`; a refusal (past the point of no return, finished) is an
 * answer, not an error.
 */
export interface OperationControl {
  abort(workflowId: string, runId: string | null, reason: string): Promise<AbortAnswer>;
}

/** Runs a node's hook scripts (Ganeti's hooks runner): every executable in `<path>-<phase>.d`. */
export interface HookRunner {
  run(path: HookPath, phase: HookPhase, env: Record<string, string>, timeoutSec: number, signal?: AbortSignal): Promise<HookScriptResult[]>;
}
