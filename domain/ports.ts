/**
 * Port interfaces between the orchestration and the world: a node's RPC surface, made of a hypervisor
 * port (the simulated hypervisor, or QEMU) and a storage port (the simulated DRBD; a real DRBD driver
 * later), composed per node in the worker wiring; what the two sides of one node tell each other
 * (who holds a disk open, whether a disk can be opened, what the hypervisor observed) and where a
 * hypervisor reads its node's facts; and the cluster configuration store.
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

/**
 * The hypervisor side of a node (Ganeti's hypervisor RPCs): node information, the instance's
 * process and its migration. Implemented by the simulated hypervisor and by the QEMU driver.
 */
export interface NodeHypervisor {
  readonly node: string;
  nodeInfo(): Promise<NodeInfoPayload>;
  instanceList(): Promise<string[]>;
  instanceInfo(inst: RpcInstance): Promise<InstanceInfoPayload | null>;
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
}

/**
 * The storage side of a node (Ganeti's bdev and DRBD RPCs, and bridges_exist). Implemented by the
 * simulated DRBD (adapters/sim/storage.ts); a real DRBD driver would be another implementation.
 */
export interface NodeStorage {
  readonly node: string;
  bridgesExist(bridges: string[]): Promise<void>;
  blockdevFind(inst: RpcInstance, diskIndex: number): Promise<BlockdevStatus | null>;
  blockdevClose(inst: RpcInstance): Promise<void>;
  blockdevOpen(inst: RpcInstance, exclusive: boolean): Promise<void>;
  blockdevShutdown(inst: RpcInstance): Promise<void>;
  blockdevAssemble(inst: RpcInstance, asPrimary: boolean): Promise<void>;
  drbdDisconnectNet(inst: RpcInstance): Promise<void>;
  drbdAttachNet(inst: RpcInstance, multimaster: boolean): Promise<void>;
  drbdWaitSync(inst: RpcInstance): Promise<WaitSyncPayload>;
}

/**
 * Ganeti's node RPCs (lib/rpc_defs.py) used by migration, failover and cleanup: a hypervisor side and
 * a storage side, composed per node (`composeNode`, domain/compose-node.ts; worker/backends.ts).
 */
export interface NodeRpc extends NodeHypervisor, NodeStorage {}

/** The RPCs (each a node activity); the optional event wait is the driver's, used inside `waitForMigration`. */
export type NodeRpcMethod = Exclude<keyof NodeRpc, 'node' | 'instanceWaitMigrationEvent'>;

/** The storage side's RPCs. */
export type NodeStorageMethod = Exclude<keyof NodeStorage, 'node'>;

// ---- node-local: what the two sides of one node tell each other (not RPCs) ------------------------

/**
 * Who holds an instance's disks open on a node, as the storage side asks the hypervisor beside it (a
 * DRBD device that a process has open can be neither demoted nor shut down). Implemented by each
 * hypervisor; the composition hands it to the storage side.
 */
export interface DiskHolders {
  /**
   * Runs `step` while this node's hypervisor starts and stops no process of `instance`; `held()`
   * answers whether one holds its disks open, and stays true to it until `step` settles, so the
   * storage side may ask inside its own transaction.
   */
  withHolders<R>(instance: string, step: (held: () => boolean) => Promise<R>): Promise<R>;
}

/** What the storage side offers the hypervisor on the same node (node-local, not RPCs). */
export interface StorageSide {
  /**
   * Why the instance's disks cannot be opened on this node as its device model needs them (DRBD not
   * assembled or Secondary, a sharedfile disk not opened), e.g. `cannot open disk 0: drbd3 is
   * Secondary (Wrong medium type)`; null: they can. A real driver leaves this to the kernel.
   */
  openRefusal(inst: RpcInstance): Promise<string | null>;
  /**
   * Optional: what the hypervisor observed of its processes, with its RPC log entry. The simulated
   * storage records it in the hardware document (`sim status`, the invariant checker, chaos checks
   * read it there); a real storage driver has no use for it.
   */
  hypervisorObserved?(report: ObservedReport): Promise<void>;
}

/** The facts a hypervisor driver needs of its node's hardware. */
export interface NodeFacts {
  /** False while the node is powered off: the driver kills its processes and answers nothing. */
  powered: boolean;
  memoryTotal: number;
  /** Memory the node itself uses, MiB. */
  dom0Memory: number;
  secondaryIp: string;
  /** First port of the node's incoming-migration port pool. */
  migrationBasePort: number;
}

/**
 * Where a hypervisor driver reads its node's facts: the simulated hardware in the simulation
 * (adapters/sim/mirror.ts), the host itself (and the node's configuration) on a real node.
 */
export interface NodeHost {
  /** False once the host is gone for good (the simulated cluster was removed): the driver's watch stops. */
  exists(): boolean;
  /** The node's facts now; null if there is no such node. */
  facts(): NodeFacts | null;
}

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

/** One change to what a hypervisor observed on its node. */
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

/** What a hypervisor reports after an RPC (or a watch tick): its observations and the RPC log entry. */
export interface ObservedReport {
  edits: MirrorEdit[];
  log?: MirrorLogEntry;
  /** Read-only RPCs: record nothing (not even the log entry) if the edits change nothing recorded. */
  unlessUnchanged?: boolean;
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
