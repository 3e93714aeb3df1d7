/**
 * OpInstanceStartup (LUInstanceStartup) as a workflow, with the same ID `instance/<name>` as the
 * migrate and failover workflows, so a start excludes any other operation on the instance.
 */
import { prereqError } from '../domain/errors.js';
import { checkStartupInput } from '../domain/input-check.js';
import type { OperationResult, StartupInput } from '../domain/ops.js';
import { requireBusinessKey } from './business-key.js';
import { validated } from './input.js';
import { opFailure, Operation } from './operation.js';
import { runPowerOperation } from './power.js';

export async function startInstanceWorkflow(input: StartupInput): Promise<OperationResult> {
  const raw = (input ?? {}) as Partial<StartupInput>;
  const op = new Operation('start', typeof raw.instance === 'string' ? raw.instance : '');
  const parsed = await validated(checkStartupInput(input), input, 'StartupInputSchema');
  if (!parsed.ok) {
    op.finish('failed');
    throw opFailure(prereqError(parsed.message, 'wrong_input'));
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
