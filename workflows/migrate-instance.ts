/**
 * OpInstanceMigrate (LUInstanceMigrate) as a workflow, ID `instance/<name>`: a live or non-live
 * migration, a migration cleanup, or — when the prerequisites say so and it is allowed — a failover.
 */
import { prereqError } from '../domain/errors.js';
import { checkMigrateInput } from '../domain/input-check.js';
import type { MigrateInput, OperationResult } from '../domain/ops.js';
import { requireBusinessKey } from './business-key.js';
import { validated } from './input.js';
import { opFailure, Operation } from './operation.js';
import { runOperation } from './run-operation.js';

/** The migrate LU runs a fallback failover with these fixed values (Ganeti's `_ExpandNamesForMigration`). */
const MIGRATE_FAILOVER_SHUTDOWN_TIMEOUT = 120;

export async function migrateInstanceWorkflow(input: MigrateInput): Promise<OperationResult> {
  const raw = (input ?? {}) as Partial<MigrateInput>;
  const op = new Operation(raw.cleanup ? 'cleanup' : 'migrate', typeof raw.instance === 'string' ? raw.instance : '');
  const parsed = await validated(checkMigrateInput(input), input, 'MigrateInputSchema');
  if (!parsed.ok) {
    op.finish('failed');
    throw opFailure(prereqError(parsed.message, 'wrong_input'));
  }
  const req = parsed.data;
  requireBusinessKey(op, req.instance);
  return runOperation(op, {
    lu: 'migrate',
    prereq: {
      instance: req.instance,
      failover: false,
      cleanup: req.cleanup,
      allowFailover: req.allowFailover,
      targetNode: req.targetNode,
      mode: req.mode,
      live: req.live,
      ignoreIpolicy: req.ignoreIpolicy,
    },
    dryRun: req.dryRun,
    reason: req.reason,
    shutdownTimeout: MIGRATE_FAILOVER_SHUTDOWN_TIMEOUT,
    ignoreConsistency: false,
    allowRuntimeChanges: req.allowRuntimeChanges,
    ignoreHvversions: req.ignoreHvversions,
    policy: req.policy,
  });
}
