/**
 * `node migrate` (Ganeti's OpNodeMigrate) and `node failover` (gnt-node failover) as parent
 * workflows, ID `node/<node>`: each instance whose primary is the node moves as a child instance
 * operation (workflows/node-evacuate.ts). Refused under any other ID, like the instance operations
 * (workflows/business-key.ts): only that ID keeps two operations on one node apart.
 */
import { ApplicationFailure, patched, workflowInfo } from '@temporalio/workflow';
import { OpFailure } from '../domain/errors.js';
import { nodeWorkflowIdFor } from '../domain/naming.js';
import type { NodeFailoverInput, NodeMigrateInput, NodeOperationKind, NodeOperationResult } from '../domain/node-ops.js';
import type { describeZodError } from '../domain/ops.js';
import { runNodeOperation, type NodeRequest } from './node-evacuate.js';
import { NodeOperation } from './node-operation.js';

const REFUSE_FOREIGN_WORKFLOW_ID = 'refuse-foreign-workflow-id';

function refuse(op: NodeOperation, type: string, message: string, code?: string): never {
  op.finish('failed');
  throw ApplicationFailure.create({ type, message, nonRetryable: true, details: [{ feedback: op.feedback, ...(code ? { code } : {}) }] });
}

interface Schema<T> {
  safeParse(input: unknown): { success: true; data: T } | { success: false; error: Parameters<typeof describeZodError>[0] };
}

/**
 * The input schemas, loaded when a node operation starts (not part of every workflow's modules:
 * zod costs each workflow about 1 MiB, see domain/input-check.ts). Node operations are few.
 */
async function schemas() {
  const [nodeOps, ops] = await Promise.all([
    import(/* webpackMode: "eager" */ '../domain/node-ops.js'),
    import(/* webpackMode: "eager" */ '../domain/ops.js'),
  ]);
  return { ...nodeOps, describeZodError: ops.describeZodError };
}

function prepare<T extends { node: string }>(
  kind: NodeOperationKind,
  schema: Schema<T>,
  input: unknown,
  describe: typeof describeZodError,
): { op: NodeOperation; req: T } {
  const raw = (input ?? {}) as { node?: unknown };
  const op = new NodeOperation(kind, typeof raw.node === 'string' ? raw.node : '');
  const parsed = schema.safeParse(input);
  if (!parsed.success) refuse(op, OpFailure.PrereqFailed, describe(parsed.error), 'wrong_input');
  const req = parsed.data;
  const id = workflowInfo().workflowId;
  const expected = nodeWorkflowIdFor(req.node);
  // As in workflows/business-key.ts: `patched()` only on the refusing branch, so a correctly named run
  // issues no marker and replay tools (which replay under another ID) take the normal path.
  if (id !== expected && patched(REFUSE_FOREIGN_WORKFLOW_ID)) {
    refuse(
      op,
      OpFailure.WrongWorkflowId,
      `refusing to run under the workflow ID ${JSON.stringify(id)}: an operation on node ${req.node} runs only as ` +
        `${JSON.stringify(expected)} (one node operation per node); nothing was changed`,
    );
  }
  return { op, req };
}

export async function nodeMigrateWorkflow(input: NodeMigrateInput): Promise<NodeOperationResult> {
  const s = await schemas();
  const { op, req } = prepare('node-migrate', s.NodeMigrateInputSchema, input, s.describeZodError);
  const r: NodeRequest = { kind: 'node-migrate', ...req };
  return runNodeOperation(op, r);
}

export async function nodeFailoverWorkflow(input: NodeFailoverInput): Promise<NodeOperationResult> {
  const s = await schemas();
  const { op, req } = prepare('node-failover', s.NodeFailoverInputSchema, input, s.describeZodError);
  const r: NodeRequest = { kind: 'node-failover', ...req };
  return runNodeOperation(op, r);
}
