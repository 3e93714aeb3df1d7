/**
 * Typed helpers for the node operations (`node migrate`, `node failover`): started under the ID
 * `node/<node>` with conflict policy FAIL (one node operation per node), validated with the same
 * schemas as the workflows.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { nodeWorkflowIdFor, orchestratorQueue } from '../domain/naming.js';
import {
  effectiveLimits,
  NodeFailoverInputSchema,
  NodeMigrateInputSchema,
  nodeOperationSummary,
  primaryInstances,
  type NodeFailoverInput,
  type NodeMigrateInput,
  type NodeOperationKind,
  type NodeOperationResult,
} from '../domain/node-ops.js';
import { describeZodError } from '../domain/ops.js';
import type { z } from 'zod';
import { SA } from '../workflows/messages.js';
import { nodeFailoverWorkflow, nodeMigrateWorkflow } from '../workflows/node-workflows.js';
import { OperationError, PrereqFailedError, toOperationError, type StartOptions } from './api.js';

export { NodeFailoverInputSchema, NodeMigrateInputSchema, nodeWorkflowIdFor };
export type { NodeFailoverInput, NodeMigrateInput, NodeOperationResult };

/** Another node operation runs on the node. */
export class NodeBusyError extends OperationError {
  constructor(
    readonly node: string,
    readonly workflowId: string,
  ) {
    super('NodeBusy', `node ${node} is busy: a node operation is running (workflow ${workflowId}); wait for it or abort it`);
  }
}

function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw new PrereqFailedError(describeZodError(r.error), 'wrong_input');
  return r.data;
}

async function startNodeOperation<W extends typeof nodeMigrateWorkflow | typeof nodeFailoverWorkflow>(
  client: Client,
  kind: NodeOperationKind,
  workflow: W,
  input: Parameters<W>[0],
  req: { node: string; reason: string; dryRun: boolean; limits: object } & Parameters<typeof nodeOperationSummary>[1],
  opts: StartOptions,
): Promise<WorkflowHandleWithFirstExecutionRunId<W>> {
  const snap = opts.snapshot;
  const count = snap ? primaryInstances(snap, req.node).length : null;
  const limits = snap ? effectiveLimits(snap, req.limits) : null;
  try {
    return (await client.workflow.start(workflow as typeof nodeMigrateWorkflow, {
      taskQueue: orchestratorQueue(opts.cluster),
      workflowId: nodeWorkflowIdFor(req.node),
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: [
        { key: SA.operation, value: kind },
        { key: SA.sourceNode, value: req.node },
      ],
      staticSummary: nodeOperationSummary(kind, req, count, limits),
      staticDetails: [
        `**Node:** ${req.node}`,
        `**Operation:** ${kind}`,
        `**Inputs:** \`${JSON.stringify(input)}\``,
        ...(req.reason ? [`**Reason:** ${req.reason}`] : []),
      ].join('\n\n'),
      args: [input as NodeMigrateInput],
    })) as unknown as WorkflowHandleWithFirstExecutionRunId<W>;
  } catch (e) {
    if (e instanceof WorkflowExecutionAlreadyStartedError) throw new NodeBusyError(req.node, e.workflowId);
    throw e;
  }
}

/** Starts `node migrate`; returns at once. */
export async function startNodeMigration(client: Client, input: NodeMigrateInput, opts: StartOptions) {
  const req = parse(NodeMigrateInputSchema, input);
  return startNodeOperation(client, 'node-migrate', nodeMigrateWorkflow, input, req, opts);
}

/** Starts `node failover`; returns at once. */
export async function startNodeFailover(client: Client, input: NodeFailoverInput, opts: StartOptions) {
  const req = parse(NodeFailoverInputSchema, input);
  return startNodeOperation(client, 'node-failover', nodeFailoverWorkflow, input, req, opts);
}

/**
 * Waits for a node operation. A node operation with failed instances (or aborted) throws an
 * `OperationError` whose `result` is the per-instance `NodeOperationResult`.
 */
export async function nodeOperationResult(handle: WorkflowHandle): Promise<NodeOperationResult> {
  try {
    return (await handle.result()) as NodeOperationResult;
  } catch (e) {
    throw toOperationError(e);
  }
}

export async function migrateNode(client: Client, input: NodeMigrateInput, opts: StartOptions): Promise<NodeOperationResult> {
  return nodeOperationResult(await startNodeMigration(client, input, opts));
}

export async function failoverNode(client: Client, input: NodeFailoverInput, opts: StartOptions): Promise<NodeOperationResult> {
  return nodeOperationResult(await startNodeFailover(client, input, opts));
}
