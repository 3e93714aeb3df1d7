/**
 * Typed helpers for programs: start or run operations with the project's workflow ID and conflict
 * policy, and get typed results or typed errors.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
  type WorkflowOptions,
} from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, TerminatedFailure } from '@temporalio/common';
import { OpFailure } from '../domain/errors.js';
import { orchestratorQueue, workflowIdFor } from '../domain/naming.js';
import {
  describeZodError,
  FailoverInputSchema,
  MigrateInputSchema,
  ShutdownInputSchema,
  StartupInputSchema,
  type FailoverInput,
  type MigrateInput,
  type OperationResult,
  type ShutdownInput,
  type StartupInput,
} from '../domain/ops.js';
import type { z } from 'zod';
import { failoverSummary, migrateSummary, shutdownSummary, startupSummary } from '../domain/summary.js';
import type { ClusterSnapshot } from '../domain/types.js';
import { SA } from '../workflows/messages.js';
import { failoverInstanceWorkflow } from '../workflows/failover-instance.js';
import { migrateInstanceWorkflow } from '../workflows/migrate-instance.js';
import { shutdownInstanceWorkflow } from '../workflows/shutdown-instance.js';
import { startInstanceWorkflow } from '../workflows/start-instance.js';

export { FailoverInputSchema, MigrateInputSchema, ShutdownInputSchema, StartupInputSchema, workflowIdFor };
export type { FailoverInput, MigrateInput, OperationResult, ShutdownInput, StartupInput };

/** An operation ended in a failure (or was refused); `type` is the failure type. */
export class OperationError extends Error {
  /** A node operation's per-instance result, when it failed or was aborted (domain/node-ops.ts). */
  result?: unknown;
  constructor(
    readonly type: string,
    message: string,
    readonly feedback: string[] = [],
    readonly code?: string,
  ) {
    super(message);
    this.name = type;
  }
}
/** Ganeti's OpPrereqError: nothing changed. */
export class PrereqFailedError extends OperationError {
  constructor(message: string, code?: string, feedback: string[] = []) {
    super(OpFailure.PrereqFailed, message, feedback, code);
  }
}
/** Ganeti's OpExecError: failed while executing. */
export class ExecutionFailedError extends OperationError {
  constructor(message: string, feedback: string[] = [], type: string = OpFailure.ExecutionFailed) {
    super(type, message, feedback);
  }
}
/** The operation was started under another ID than `instance/<name>` and refused to run: nothing changed. */
export class WrongWorkflowIdError extends OperationError {
  constructor(message: string, feedback: string[] = []) {
    super(OpFailure.WrongWorkflowId, message, feedback);
  }
}
/** Another operation runs on the instance. */
export class InstanceBusyError extends OperationError {
  constructor(
    readonly instance: string,
    readonly running: { workflowId: string; runId?: string; workflowType?: string; operation?: string },
  ) {
    super(
      'InstanceBusy',
      `instance ${instance} is busy: ${running.operation ?? running.workflowType ?? 'an operation'} is running ` +
        `(workflow ${running.workflowId}${running.runId ? `, run ${running.runId}` : ''}); wait for it or abort it`,
    );
  }
}

export interface StartOptions {
  /** The cluster name: the orchestrator's task queue derives from it. */
  cluster: string;
  /** The configuration, if the caller has it: the Web UI summary then names the nodes. */
  snapshot?: ClusterSnapshot;
}

function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw new PrereqFailedError(describeZodError(r.error), 'wrong_input');
  return r.data;
}

async function busyError(client: Client, instance: string, err: WorkflowExecutionAlreadyStartedError): Promise<InstanceBusyError> {
  const running: ConstructorParameters<typeof InstanceBusyError>[1] = { workflowId: err.workflowId, workflowType: err.workflowType };
  try {
    const d = await client.workflow.getHandle(err.workflowId).describe();
    running.runId = d.runId;
    running.workflowType = d.type;
    const op = d.typedSearchAttributes.get(SA.operation);
    if (op) running.operation = op;
  } catch {
    // describe is best effort; the start error already names the workflow
  }
  return new InstanceBusyError(instance, running);
}

interface StartSpec {
  instance: string;
  operation: 'migrate' | 'cleanup' | 'failover' | 'start' | 'shutdown';
  summary: string;
  input: unknown;
  reason: string;
}

/** What every operation start shares (everything but the workflow and its argument). */
function startOptions(spec: StartSpec, opts: StartOptions): WorkflowOptions {
  return {
    taskQueue: orchestratorQueue(opts.cluster),
    workflowId: workflowIdFor(spec.instance),
    workflowIdConflictPolicy: 'FAIL',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    typedSearchAttributes: [
      { key: SA.instance, value: spec.instance },
      { key: SA.operation, value: spec.operation },
    ],
    staticSummary: spec.summary,
    staticDetails: [
      `**Instance:** ${spec.instance}`,
      `**Operation:** ${spec.operation}`,
      `**Inputs:** \`${JSON.stringify(spec.input)}\``,
      ...(spec.reason ? [`**Reason:** ${spec.reason}`] : []),
    ].join('\n\n'),
  };
}

/** A start refused because the instance's workflow ID is taken becomes an `InstanceBusyError`. */
async function refusedAsBusy<T>(client: Client, instance: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (e) {
    if (e instanceof WorkflowExecutionAlreadyStartedError) throw await busyError(client, instance, e);
    throw e;
  }
}

/** Starts a migration (or cleanup); returns at once. */
export async function startMigration(
  client: Client,
  input: MigrateInput,
  opts: StartOptions,
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof migrateInstanceWorkflow>> {
  const req = parse(MigrateInputSchema, input);
  const spec: StartSpec = {
    instance: req.instance,
    operation: req.cleanup ? 'cleanup' : 'migrate',
    summary: migrateSummary(req, opts.snapshot),
    input,
    reason: req.reason,
  };
  return refusedAsBusy(client, req.instance, () =>
    client.workflow.start(migrateInstanceWorkflow, { ...startOptions(spec, opts), args: [input] }),
  );
}

/** Starts a failover; returns at once. */
export async function startFailover(
  client: Client,
  input: FailoverInput,
  opts: StartOptions,
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof failoverInstanceWorkflow>> {
  const req = parse(FailoverInputSchema, input);
  const spec: StartSpec = {
    instance: req.instance,
    operation: 'failover',
    summary: failoverSummary(req, opts.snapshot),
    input,
    reason: req.reason,
  };
  return refusedAsBusy(client, req.instance, () =>
    client.workflow.start(failoverInstanceWorkflow, { ...startOptions(spec, opts), args: [input] }),
  );
}

/** Starts an instance on its primary (`gnt-instance startup`); returns at once. */
export async function startStartup(
  client: Client,
  input: StartupInput,
  opts: StartOptions,
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof startInstanceWorkflow>> {
  const req = parse(StartupInputSchema, input);
  const spec: StartSpec = {
    instance: req.instance,
    operation: 'start',
    summary: startupSummary(req, opts.snapshot),
    input,
    reason: req.reason,
  };
  return refusedAsBusy(client, req.instance, () =>
    client.workflow.start(startInstanceWorkflow, { ...startOptions(spec, opts), args: [input] }),
  );
}

/** Shuts an instance down (`gnt-instance shutdown`); returns at once. */
export async function startShutdown(
  client: Client,
  input: ShutdownInput,
  opts: StartOptions,
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof shutdownInstanceWorkflow>> {
  const req = parse(ShutdownInputSchema, input);
  const spec: StartSpec = {
    instance: req.instance,
    operation: 'shutdown',
    summary: shutdownSummary(req, opts.snapshot),
    input,
    reason: req.reason,
  };
  return refusedAsBusy(client, req.instance, () =>
    client.workflow.start(shutdownInstanceWorkflow, { ...startOptions(spec, opts), args: [input] }),
  );
}

/** Waits for an operation and maps its failure to a typed error. */
export async function operationResult(handle: WorkflowHandle): Promise<OperationResult> {
  try {
    return (await handle.result()) as OperationResult;
  } catch (e) {
    throw toOperationError(e);
  }
}

export function toOperationError(e: unknown): unknown {
  if (!(e instanceof WorkflowFailedError)) return e;
  const c = e.cause;
  if (c instanceof ApplicationFailure) {
    const d = (c.details?.[0] ?? {}) as { code?: string; feedback?: string[]; result?: unknown };
    if (c.type === OpFailure.PrereqFailed) return new PrereqFailedError(c.message, d.code, d.feedback ?? []);
    if (c.type === OpFailure.WrongWorkflowId) return new WrongWorkflowIdError(c.message, d.feedback ?? []);
    const err = new ExecutionFailedError(c.message, d.feedback ?? [], c.type ?? OpFailure.ExecutionFailed);
    if (d.result !== undefined) err.result = d.result;
    return err;
  }
  if (c instanceof CancelledFailure) return new OperationError('Cancelled', 'the operation was cancelled');
  if (c instanceof TerminatedFailure) {
    return new OperationError('Terminated', 'the operation was terminated (no compensation ran): run the cleanup');
  }
  return new OperationError('Failed', c?.message ?? e.message);
}

export async function migrateInstance(client: Client, input: MigrateInput, opts: StartOptions): Promise<OperationResult> {
  return operationResult(await startMigration(client, input, opts));
}

export async function failoverInstance(client: Client, input: FailoverInput, opts: StartOptions): Promise<OperationResult> {
  return operationResult(await startFailover(client, input, opts));
}

export async function startupInstance(client: Client, input: StartupInput, opts: StartOptions): Promise<OperationResult> {
  return operationResult(await startStartup(client, input, opts));
}

export async function shutdownInstance(client: Client, input: ShutdownInput, opts: StartOptions): Promise<OperationResult> {
  return operationResult(await startShutdown(client, input, opts));
}

/** The operation running on an instance, if any (for commands that must not race one). */
export async function runningOperation(
  client: Client,
  instance: string,
): Promise<{ workflowId: string; runId: string; operation?: string } | null> {
  try {
    const d = await client.workflow.getHandle(workflowIdFor(instance)).describe();
    if (d.status.name !== 'RUNNING') return null;
    const op = d.typedSearchAttributes.get(SA.operation);
    return { workflowId: d.workflowId, runId: d.runId, ...(op ? { operation: op } : {}) };
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return null;
    throw e;
  }
}
