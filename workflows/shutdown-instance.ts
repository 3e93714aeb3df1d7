/**
 * OpInstanceShutdown (LUInstanceShutdown) as a workflow, with the same ID `instance/<name>` as the
 * migrate and failover workflows, so a shutdown excludes any other operation on the instance.
 */
import { prereqError } from '../domain/errors.js';
import { describeZodError, ShutdownInputSchema, type OperationResult, type ShutdownInput } from '../domain/ops.js';
import { requireBusinessKey } from './business-key.js';
import { opFailure, Operation } from './operation.js';
import { runPowerOperation } from './power.js';

export async function shutdownInstanceWorkflow(input: ShutdownInput): Promise<OperationResult> {
  const raw = (input ?? {}) as Partial<ShutdownInput>;
  const op = new Operation('shutdown', typeof raw.instance === 'string' ? raw.instance : '');
  const parsed = ShutdownInputSchema.safeParse(input);
  if (!parsed.success) {
    op.finish('failed');
    throw opFailure(prereqError(describeZodError(parsed.error), 'wrong_input'));
  }
  const req = parsed.data;
  requireBusinessKey(op, req.instance);
  return runPowerOperation(op, {
    kind: 'shutdown',
    instance: req.instance,
    timeout: req.timeout,
    remember: !req.noRemember,
    dryRun: req.dryRun,
    reason: req.reason,
  });
}
