/**
 * How a node operation starts one child: the instance workflow, its input (the node operation's
 * options, as Ganeti's LUNodeMigrate copies them into each OpInstanceMigrate), and the start options
 * every instance operation has (ID `instance/<name>`, search attributes, Web UI summary).
 */
import { startChild, type ChildWorkflowHandle } from '@temporalio/workflow';
import { workflowIdFor } from '../domain/naming.js';
import { checkFailoverInput, checkMigrateInput } from '../domain/input-check.js';
import type { FailoverInput, MigrateInput } from '../domain/ops.js';
import { failoverSummary, migrateSummary } from '../domain/summary.js';
import type { ClusterSnapshot, Instance } from '../domain/types.js';
import { failoverInstanceWorkflow } from './failover-instance.js';
import { SA } from './messages.js';
import { migrateInstanceWorkflow } from './migrate-instance.js';
import type { NodeRequest } from './node-evacuate.js';

export interface ChildSpec {
  start(): Promise<ChildWorkflowHandle<typeof migrateInstanceWorkflow | typeof failoverInstanceWorkflow>>;
  /** For feedback: "migration", "failover". */
  verb: string;
}

/** The child for `inst`; `placed` is the target the parent chose for an externally mirrored instance. */
export function childStart(req: NodeRequest, inst: Instance, placed: string | null, snap: ClusterSnapshot, parentId: string): ChildSpec {
  const base = {
    workflowId: workflowIdFor(inst.name),
    // The parent gone (terminated, timed out), its children are asked to stop: before their point of
    // no return they abort and revert, after it they roll forward.
    parentClosePolicy: 'REQUEST_CANCEL' as const,
    workflowIdReusePolicy: 'ALLOW_DUPLICATE' as const,
    cancellationType: 'WAIT_CANCELLATION_COMPLETED' as const,
  };
  const details = (operation: string, input: unknown) =>
    [
      `**Instance:** ${inst.name}`,
      `**Operation:** ${operation}`,
      `**Started by:** ${parentId}`,
      `**Inputs:** \`${JSON.stringify(input)}\``,
      ...(req.reason ? [`**Reason:** ${req.reason}`] : []),
    ].join('\n\n');
  if (req.kind === 'node-migrate') {
    const input: MigrateInput = {
      instance: inst.name,
      allowFailover: req.allowFailover,
      allowRuntimeChanges: req.allowRuntimeChanges,
      ignoreIpolicy: req.ignoreIpolicy,
      dryRun: req.dryRun,
      reason: req.reason,
    };
    if (req.mode !== undefined) input.mode = req.mode;
    if (req.live !== undefined) input.live = req.live;
    if (req.policy !== undefined) input.policy = req.policy;
    const target = placed ?? req.targetNode;
    if (target !== undefined) input.targetNode = target;
    const options = {
      ...base,
      args: [input] as [MigrateInput],
      typedSearchAttributes: [
        { key: SA.instance, value: inst.name },
        { key: SA.operation, value: 'migrate' },
      ],
      staticSummary: migrateSummary(checkedChildInput(checkMigrateInput(input)), snap),
      staticDetails: details('migrate', input),
    };
    return { verb: 'migration', start: () => startChild(migrateInstanceWorkflow, options) };
  }
  const input: FailoverInput = {
    instance: inst.name,
    ignoreConsistency: req.ignoreConsistency,
    shutdownTimeout: req.shutdownTimeout,
    ignoreIpolicy: req.ignoreIpolicy,
    dryRun: req.dryRun,
    reason: req.reason,
  };
  if (placed !== null) input.targetNode = placed;
  const options = {
    ...base,
    args: [input] as [FailoverInput],
    typedSearchAttributes: [
      { key: SA.instance, value: inst.name },
      { key: SA.operation, value: 'failover' },
    ],
    staticSummary: failoverSummary(checkedChildInput(checkFailoverInput(input)), snap),
    staticDetails: details('failover', input),
  };
  return { verb: 'failover', start: () => startChild(failoverInstanceWorkflow, options) };
}

/** A child's input is built from the validated node request, so it passes; a refusal is a bug here. */
function checkedChildInput<T>(req: T | null): T {
  if (!req) throw new Error('the child input does not pass its own schema');
  return req;
}
