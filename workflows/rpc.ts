/**
 * Node RPCs from workflow code, with Ganeti's RpcResult semantics: a call returns a payload or a
 * failure message (never throws, except for cancellation). Calls to a node marked offline are never
 * sent; they answer "Node is marked offline" at once, as Ganeti's RPC layer does.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  TimeoutFailure,
  isCancellation,
  proxyActivities,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { NodeActivities, OrchestratorActivities } from '../activities/index.js';
import { NON_RETRYABLE_ACTIVITY_FAILURES } from '../domain/errors.js';
import { nodeQueue } from '../domain/naming.js';
import { rpcName } from '../domain/ports.js';
import { RPC_TIMEOUT_CLASS, type TimedRpc } from '../domain/rpc-timeouts.js';
import type { RpcResult } from '../domain/prereq.js';
import type { SliceRequest } from '../domain/slices.js';
import { DEFAULT_RPC_HEARTBEAT_TIMEOUT_SEC } from '../domain/model.js';
import type { ClusterSnapshot, Timing } from '../domain/types.js';

type NodeMethod = keyof NodeActivities;
type Payload<K extends NodeMethod> = Awaited<ReturnType<NodeActivities[K]>>;

export type RpcFailure = { ok: false; offline: boolean; msg: string; type?: string; details?: unknown[] };

function retryPolicy(t: Timing) {
  return {
    initialInterval: t.retryInitialIntervalMs,
    maximumInterval: t.retryMaximumIntervalMs,
    maximumAttempts: t.retryMaximumAttempts,
    backoffCoefficient: 2,
    nonRetryableErrorTypes: NON_RETRYABLE_ACTIVITY_FAILURES,
  };
}

/**
 * Cancelling an activity waits for it to acknowledge. Set explicitly: SDK 1.24 documents this as the
 * default but sends nothing when it is unset, and the server then applies TRY_CANCEL — which would
 * let a compensation start while the cancelled RPC is still running on its node.
 */
const WAIT = { cancellationType: 'WAIT_CANCELLATION_COMPLETED' } as const;

/**
 * Configuration-store activities run on the orchestrator's own task queue, each with its Web UI summary.
 * The orchestrator heartbeats them like the node agents do their RPCs: one lost with a killed
 * orchestrator is retried within the RPC heartbeat timeout, not after its minute.
 */
export function configActivities(t?: Timing): OrchestratorActivities {
  const heartbeatSec = t?.rpcHeartbeatTimeoutSec ?? DEFAULT_RPC_HEARTBEAT_TIMEOUT_SEC;
  const opts: ActivityOptions = { startToCloseTimeout: '1 minute', heartbeatTimeout: heartbeatSec * 1000, ...WAIT };
  if (t) opts.retry = retryPolicy(t);
  else opts.retry = { maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE_ACTIVITY_FAILURES };
  const as = (summary: string) => proxyActivities<OrchestratorActivities>({ ...opts, summary: `config: ${summary}` });
  return {
    loadClusterSnapshot: (slice) => as(`load the cluster configuration${sliceSummary(slice)}`).loadClusterSnapshot(slice),
    reservedMemory: () => as('memory reserved by other operations').reservedMemory(),
    reserveTargetMemory: (r) => as(`reserve ${r.wanted} MiB (at least ${r.needed}) on ${r.node} for ${r.instance}`).reserveTargetMemory(r),
    releaseTargetMemory: () => as('release the target memory reservation').releaseTargetMemory(),
    setInstancePrimary: (r) => as(`primary node of ${r.instance} := ${r.primary} (commit point)`).setInstancePrimary(r),
    setDisksActive: (r) => as(`disks_active of ${r.instance} := ${r.active}`).setDisksActive(r),
    setAdminState: (r) => as(`admin_state of ${r.instance} := ${r.state}`).setAdminState(r),
    setNodeDrained: (r) => as(`drained of ${r.node} := ${r.drained}`).setNodeDrained(r),
    memoryReservations: () => as('memory reservations of running operations').memoryReservations(),
    acquireEvacuationSlot: (r) =>
      as(`evacuation slot for ${r.instance}: ${r.source} → ${r.target ?? 'allocator'}`).acquireEvacuationSlot(r),
    releaseEvacuationSlot: (r) => as(`release the evacuation slot of ${r.instance}`).releaseEvacuationSlot(r),
    abortInstanceOperation: (r) =>
      proxyActivities<OrchestratorActivities>({ ...opts, summary: `abort ${r.workflowId}` }).abortInstanceOperation(r),
  };
}

/** What a snapshot slice holds, for the activity's summary. */
function sliceSummary(slice: SliceRequest | undefined): string {
  if (!slice) return '';
  const parts: string[] = [];
  if (slice.instances)
    parts.push(slice.instances.length === 1 ? `instance ${slice.instances[0]}` : `${slice.instances.length} instance(s)`);
  if (slice.primaryOn !== undefined) parts.push(`the instances of ${slice.primaryOn}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** The message Ganeti would show as the RPC's fail_msg. */
export function failMsg(e: unknown): string {
  if (e instanceof ActivityFailure) {
    const c = e.cause;
    if (c instanceof ApplicationFailure) return c.message;
    if (c instanceof TimeoutFailure) {
      return c.timeoutType === 'SCHEDULE_TO_START'
        ? 'no answer: the node agent did not pick up the call in time'
        : `no answer: the call timed out (${String(c.timeoutType ?? 'unknown')
            .toLowerCase()
            .replace(/_/g, '-')})`;
    }
    return c?.message ?? e.message;
  }
  return e instanceof Error ? e.message : String(e);
}

/** Activity summaries in the Web UI: Ganeti's RPC name, or what a composite activity does. */
const LABELS: Partial<Record<NodeMethod, string>> = {
  waitForMigration: 'memory transfer (polling instance_get_migration_status)',
  waitForDiskSync: 'resync (polling drbd_wait_sync)',
  runHooks: 'hooks_runner',
};

export class NodeRpcClient {
  constructor(private readonly snap: ClusterSnapshot) {}

  private get timing(): Timing {
    return this.snap.cluster.timing;
  }

  private options(node: string, summary: string, opts: ActivityOptions): ActivityOptions {
    return {
      taskQueue: nodeQueue(this.snap.cluster.name, node),
      scheduleToStartTimeout: this.timing.scheduleToStartSec * 1000,
      retry: retryPolicy(this.timing),
      summary,
      ...WAIT,
      ...opts,
    };
  }

  private async invoke<K extends NodeMethod>(
    node: string,
    method: K,
    args: Parameters<NodeActivities[K]>,
    summaryExtra: string | undefined,
    opts: ActivityOptions,
  ): Promise<RpcResult<Payload<K>> & ({ ok: true } | RpcFailure)> {
    if (this.snap.nodes[node]?.offline) return { ok: false, offline: true, msg: 'Node is marked offline' };
    const summary = `${node}: ${LABELS[method] ?? rpcName(method)}${summaryExtra ? ` (${summaryExtra})` : ''}`;
    const acts = proxyActivities<NodeActivities>(this.options(node, summary, opts));
    try {
      const fn = acts[method] as (...a: Parameters<NodeActivities[K]>) => Promise<Payload<K>>;
      return { ok: true, payload: await fn(...args) };
    } catch (e) {
      if (isCancellation(e)) throw e;
      const cause = e instanceof ActivityFailure && e.cause instanceof ApplicationFailure ? e.cause : undefined;
      const out: RpcFailure = { ok: false, offline: false, msg: failMsg(e) };
      if (cause?.type) out.type = cause.type;
      if (cause?.details) out.details = [...cause.details];
      return out;
    }
  }

  /**
   * One node RPC with the timeout of its Ganeti class (domain/rpc-timeouts.ts; at least
   * `minTimeoutSec`); `once` sends it a single time (for calls that must not be repeated, such as
   * hooks). A `probe` asks a node what is true before a compensation: sent once, and bounded by the
   * urgent timeout whatever the RPC's class, so a node that does not answer delays nothing for long.
   * Every call has a short heartbeat timeout as well: the node agent heartbeats while the RPC runs, so
   * an attempt lost with its agent is retried (or, for a probe, given up) within seconds.
   */
  call<K extends NodeMethod & TimedRpc>(
    node: string,
    method: K,
    args: Parameters<NodeActivities[K]>,
    summaryExtra?: string,
    opts: { minTimeoutSec?: number; once?: boolean; probe?: boolean } = {},
  ) {
    // Histories recorded before the setting existed carry snapshots without it.
    const heartbeatTimeout = (this.timing.rpcHeartbeatTimeoutSec ?? DEFAULT_RPC_HEARTBEAT_TIMEOUT_SEC) * 1000;
    if (opts.probe) {
      return this.invoke(node, method, args, summaryExtra, {
        startToCloseTimeout: this.timing.rpcTimeouts.urgent * 1000,
        heartbeatTimeout,
        retry: { ...retryPolicy(this.timing), maximumAttempts: 1 },
      });
    }
    const seconds = Math.max(this.timing.rpcTimeouts[RPC_TIMEOUT_CLASS[method]], opts.minTimeoutSec ?? 0);
    return this.invoke(node, method, args, summaryExtra, {
      startToCloseTimeout: seconds * 1000,
      heartbeatTimeout,
      ...(opts.once ? { retry: { ...retryPolicy(this.timing), maximumAttempts: 1 } } : {}),
    });
  }

  /** A long, heartbeating wait: no overall deadline (Ganeti has none), a heartbeat timeout instead. */
  wait<K extends 'waitForDiskSync' | 'waitForMigration'>(
    node: string,
    method: K,
    args: Parameters<NodeActivities[K]>,
    summaryExtra?: string,
  ) {
    return this.invoke(node, method, args, summaryExtra, {
      startToCloseTimeout: '7 days',
      heartbeatTimeout: this.timing.heartbeatTimeoutSec * 1000,
    });
  }

  /** The same RPC on several nodes in parallel; results in the order of `nodes`. */
  async all<K extends NodeMethod & TimedRpc>(
    nodes: string[],
    method: K,
    args: (node: string) => Parameters<NodeActivities[K]>,
    summaryExtra?: string,
  ) {
    return Promise.all(nodes.map((n) => this.call(n, method, args(n), summaryExtra)));
  }
}
