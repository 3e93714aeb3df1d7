/**
 * Operations as jobs (gnt-job's view): list them, describe one with its live progress, abort one.
 * The live resync / memory-transfer progress comes from the pending activity's heartbeat details;
 * the step checklist and feedback from the workflow's `progress` query.
 */
import { WorkflowUpdateFailedError, type Client, type WorkflowExecutionInfo, type WorkflowHandle } from '@temporalio/client';
import type { Payload, UpdateDefinition } from '@temporalio/common';
import type { SyncHeartbeat } from '../activities/disks.js';
import type { MigrationHeartbeat } from '../activities/hypervisor.js';
import { workflowIdFor } from '../domain/naming.js';
import {
  abortUpdate,
  forceCompleteUpdate,
  progressQuery,
  SA,
  type AbortAccepted,
  type ForceCompleteAccepted,
  type NodeProgressView,
  type ProgressView,
} from '../workflows/messages.js';
import { OperationError, PrereqFailedError, toOperationError } from './api.js';
import { AbortRequestSchema, describeZodError, ForceCompleteRequestSchema } from '../domain/ops.js';

export const WORKFLOW_TYPES = [
  'migrateInstanceWorkflow',
  'failoverInstanceWorkflow',
  'startInstanceWorkflow',
  'shutdownInstanceWorkflow',
  'nodeMigrateWorkflow',
  'nodeFailoverWorkflow',
] as const;

/** The node operations' workflow types (their progress has another shape: NodeProgressView). */
export const NODE_WORKFLOW_TYPES: readonly string[] = ['nodeMigrateWorkflow', 'nodeFailoverWorkflow'];

/** An instance name or a workflow ID ("instance/<name>"). */
export const toWorkflowId = (idOrInstance: string): string => (idOrInstance.includes('/') ? idOrInstance : workflowIdFor(idOrInstance));

export interface JobSummary {
  workflowId: string;
  runId: string;
  type: string;
  status: string;
  instance: string | null;
  operation: string | null;
  sourceNode: string | null;
  targetNode: string | null;
  phase: string | null;
  needsOperator: boolean;
  startTime: string;
  closeTime: string | null;
}

/** What a listing or a describe says of an execution (both carry these fields). */
type Execution = Pick<
  WorkflowExecutionInfo,
  'workflowId' | 'runId' | 'type' | 'status' | 'typedSearchAttributes' | 'startTime' | 'closeTime'
>;

function summaryOf(wf: Execution): JobSummary {
  const sa = wf.typedSearchAttributes;
  return {
    workflowId: wf.workflowId,
    runId: wf.runId,
    type: wf.type,
    status: wf.status.name,
    instance: sa.get(SA.instance) ?? null,
    operation: sa.get(SA.operation) ?? null,
    sourceNode: sa.get(SA.sourceNode) ?? null,
    targetNode: sa.get(SA.targetNode) ?? null,
    phase: sa.get(SA.phase) ?? null,
    needsOperator: sa.get(SA.needsOperator) ?? false,
    startTime: wf.startTime.toISOString(),
    closeTime: wf.closeTime?.toISOString() ?? null,
  };
}

export async function listJobs(client: Client, opts: { running?: boolean; limit?: number } = {}): Promise<JobSummary[]> {
  const types = WORKFLOW_TYPES.map((t) => `'${t}'`).join(', ');
  const query = `WorkflowType IN (${types})${opts.running ? " AND ExecutionStatus = 'Running'" : ''}`;
  const out: JobSummary[] = [];
  for await (const wf of client.workflow.list({ query })) {
    out.push(summaryOf(wf));
    if (opts.limit && out.length >= opts.limit) break;
  }
  return out;
}

/** Progress of a long wait that is running now (from its heartbeat details). */
export type LiveProgress =
  | { kind: 'memory'; node: string; percent: number | null; transferredRam: number | null; totalRam: number | null }
  | { kind: 'resync'; node: string; percent: number };

/** Either long wait's heartbeat details (`phase` tells which). */
type HeartbeatShape = { phase?: (MigrationHeartbeat | SyncHeartbeat)['phase'] } & Partial<Omit<MigrationHeartbeat, 'phase'>> &
  Partial<Pick<SyncHeartbeat, 'samples'>>;

/** The first payload, decoded with the client's data converter (the payload codec included). */
async function decode(handle: WorkflowHandle, payloads: Payload[] | null | undefined): Promise<unknown> {
  const first = payloads?.[0];
  if (!first) return undefined;
  const dc = handle.client.options.loadedDataConverter;
  let decoded: Payload[] = [first];
  for (const codec of [...dc.payloadCodecs].reverse()) decoded = await codec.decode(decoded);
  return decoded[0] ? dc.payloadConverter.fromPayload(decoded[0]) : undefined;
}

export async function liveProgress(handle: WorkflowHandle): Promise<LiveProgress[]> {
  const d = await handle.describe();
  const out: LiveProgress[] = [];
  for (const a of d.raw.pendingActivities ?? []) {
    const details = (await decode(handle, a.heartbeatDetails?.payloads as Payload[] | undefined)) as HeartbeatShape | undefined;
    if (!details) continue;
    if (details.phase === 'memory') {
      out.push({
        kind: 'memory',
        node: details.node ?? '',
        percent: details.percent ?? null,
        transferredRam: details.transferredRam ?? null,
        totalRam: details.totalRam ?? null,
      });
    } else if (details.phase === 'resync' && typeof details.percent === 'number') {
      out.push({ kind: 'resync', node: details.node ?? '', percent: details.percent });
    }
  }
  return out;
}

export interface JobInfo extends JobSummary {
  summary: string | null;
  /** An instance operation's progress, or a node operation's (per instance). */
  progress: ProgressView | NodeProgressView | null;
  live: LiveProgress[];
  result: unknown;
  failure: { type: string; message: string } | null;
}

export async function jobInfo(client: Client, idOrInstance: string): Promise<JobInfo> {
  const handle = client.workflow.getHandle(toWorkflowId(idOrInstance));
  const d = await handle.describe();
  let progress: ProgressView | NodeProgressView | null = null;
  try {
    progress = (await handle.query(progressQuery)) as ProgressView | NodeProgressView;
  } catch {
    // no worker to answer
  }
  let result: unknown = null;
  let failure: JobInfo['failure'] = null;
  if (d.status.name !== 'RUNNING') {
    try {
      result = await handle.result();
    } catch (e) {
      const err = toOperationError(e);
      failure = err instanceof OperationError ? { type: err.type, message: err.message } : { type: 'Error', message: String(err) };
    }
  }
  return {
    ...summaryOf(d),
    summary: (await d.staticSummary()) ?? null,
    progress,
    live: d.status.name === 'RUNNING' ? await liveProgress(handle) : [],
    result,
    failure,
  };
}

/** The operation refused the abort (past its point of no return, finished, or already aborting). */
export class AbortRefusedError extends OperationError {
  constructor(message: string) {
    super('AbortRefused', message);
  }
}

/** Sends the `abort` update: resolves once accepted (abort + revert then run), or throws AbortRefusedError. */
export async function abortOperation(client: Client, idOrInstance: string, reason?: string): Promise<AbortAccepted> {
  const req = AbortRequestSchema.safeParse(reason ? { reason } : {});
  if (!req.success) throw new PrereqFailedError(`abort: ${describeZodError(req.error)}`, 'wrong_input');
  const handle = client.workflow.getHandle(toWorkflowId(idOrInstance));
  return sendUpdate(handle, abortUpdate, reason ? { reason } : {}, (m) => new AbortRefusedError(m));
}

/** The operation refused a force-complete (no memory transfer running, post-copy already, finished). */
export class ForceCompleteRefusedError extends OperationError {
  constructor(message: string) {
    super('ForceCompleteRefused', message);
  }
}

/**
 * Sends the `forceComplete` update: resolves once accepted (post-copy, or the source paused), or
 * throws ForceCompleteRefusedError with the reason.
 */
export async function forceCompleteOperation(client: Client, idOrInstance: string, reason?: string): Promise<ForceCompleteAccepted> {
  const req = ForceCompleteRequestSchema.safeParse(reason ? { reason } : {});
  if (!req.success) throw new PrereqFailedError(`force-complete: ${describeZodError(req.error)}`, 'wrong_input');
  const handle = client.workflow.getHandle(toWorkflowId(idOrInstance));
  return sendUpdate(handle, forceCompleteUpdate, reason ? { reason } : {}, (m) => new ForceCompleteRefusedError(m));
}

/**
 * Sends an operation's update; its refusal (the validator's reason, or the operation has finished —
 * the server refuses updates to a closed workflow before any validator runs) is thrown as `refused`.
 */
async function sendUpdate<Ret, Arg>(
  handle: WorkflowHandle,
  update: UpdateDefinition<Ret, [Arg]>,
  arg: Arg,
  refused: (message: string) => OperationError,
): Promise<Ret> {
  try {
    return await handle.executeUpdate(update, { args: [arg] });
  } catch (e) {
    if (e instanceof WorkflowUpdateFailedError) throw refused(e.cause?.message ?? e.message);
    const status = await handle.describe().then(
      (d) => d.status.name,
      () => null,
    );
    if (status && status !== 'RUNNING') throw refused(`the operation ${handle.workflowId} has already finished (${status})`);
    throw e;
  }
}
