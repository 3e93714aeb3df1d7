/**
 * OpInstanceShutdown (LUInstanceShutdown) as a workflow, with the same ID `instance/<name>` as the
 * migrate and failover workflows, so a shutdown excludes any other operation on the instance.
 */
import { prereqError } from '../domain/errors.js';
import { checkShutdownInput } from '../domain/input-check.js';
import type { OperationResult, ShutdownInput } from '../domain/ops.js';
import { requireBusinessKey } from './business-key.js';
import { validated } from './input.js';
import { opFailure, Operation } from './operation.js';
import { runPowerOperation } from './power.js';

export async function shutdownInstanceWorkflow(input: ShutdownInput): Promise<OperationResult> {
  const raw = (input ?? {}) as Partial<ShutdownInput>;
  const op = new Operation('shutdown', typeof raw.instance === 'string' ? raw.instance : '');
  const parsed = await validated(checkShutdownInput(input), input, 'ShutdownInputSchema');
  if (!parsed.ok) {
    op.finish('failed');
    throw opFailure(prereqError(parsed.message, 'wrong_input'));
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
