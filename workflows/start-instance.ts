/**
 * OpInstanceStartup (LUInstanceStartup) as a workflow, with the same ID `instance/<name>` as the
 * migrate and failover workflows, so a start excludes any other operation on the instance.
 */
import { prereqError } from '../domain/errors.js';
import { describeZodError, StartupInputSchema, type OperationResult, type StartupInput } from '../domain/ops.js';
import { requireBusinessKey } from './business-key.js';
import { opFailure, Operation } from './operation.js';
import { runPowerOperation } from './power.js';

export async function startInstanceWorkflow(input: StartupInput): Promise<OperationResult> {
  const raw = (input ?? {}) as Partial<StartupInput>;
  const op = new Operation('start', typeof raw.instance === 'string' ? raw.instance : '');
  const parsed = StartupInputSchema.safeParse(input);
  if (!parsed.success) {
    op.finish('failed');
    throw opFailure(prereqError(describeZodError(parsed.error), 'wrong_input'));
  }
  const req = parsed.data;
  requireBusinessKey(op, req.instance);
  return runPowerOperation(op, {
    kind: 'start',
    instance: req.instance,
    force: req.force,
    remember: !req.noRemember,
    dryRun: req.dryRun,
    reason: req.reason,
  });
}
