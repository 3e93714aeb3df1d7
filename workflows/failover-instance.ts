/**
 * OpInstanceFailover (LUInstanceFailover) as a workflow, with the same ID `instance/<name>` as the
 * migrate workflow, so the two exclude each other.
 */
import { prereqError } from '../domain/errors.js';
import { checkFailoverInput } from '../domain/input-check.js';
import type { FailoverInput, OperationResult } from '../domain/ops.js';
import { requireBusinessKey } from './business-key.js';
import { validated } from './input.js';
import { opFailure, Operation } from './operation.js';
import { runOperation } from './run-operation.js';

export async function failoverInstanceWorkflow(input: FailoverInput): Promise<OperationResult> {
  const raw = (input ?? {}) as Partial<FailoverInput>;
  const op = new Operation('failover', typeof raw.instance === 'string' ? raw.instance : '');
  const parsed = await validated(checkFailoverInput(input), input, 'FailoverInputSchema');
  if (!parsed.ok) {
    op.finish('failed');
    throw opFailure(prereqError(parsed.message, 'wrong_input'));
  }
  const req = parsed.data;
  requireBusinessKey(op, req.instance);
  return runOperation(op, {
    lu: 'failover',
    prereq: {
      instance: req.instance,
      failover: true,
      cleanup: false,
      allowFailover: false,
      targetNode: req.targetNode,
      ignoreIpolicy: req.ignoreIpolicy,
    },
    dryRun: req.dryRun,
    reason: req.reason,
    shutdownTimeout: req.shutdownTimeout,
    ignoreConsistency: req.ignoreConsistency,
    // The failover LU builds the tasklet with allow_runtime_changes and ignore_hvversions set.
    allowRuntimeChanges: true,
    ignoreHvversions: true,
  });
}
