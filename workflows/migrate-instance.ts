/**
 * OpInstanceMigrate as a workflow: validate, CheckPrereq (pure checks plus the facts they ask for),
 * then `_ExecMigration` or `_ExecCleanup`. Workflow ID `instance/<name>`.
 */
import { CancellationScope, isCancellation } from '@temporalio/workflow';
import { prereqError } from '../cluster/errors.js';
import { describeZodError, MigrateInputSchema, type MigrateInput, type OperationResult } from '../cluster/ops.js';
import { describePlan } from '../cluster/plan.js';
import { execCleanup } from './cleanup.js';
import type { Exec } from './disks.js';
import { execMigration } from './migration.js';
import { opFailure, Operation, withFeedback } from './operation.js';
import { runPrereqs } from './prereq.js';
import { configActivities, NodeRpcClient } from './rpc.js';

export async function migrateInstanceWorkflow(input: MigrateInput): Promise<OperationResult> {
  const raw = (input ?? {}) as Partial<MigrateInput>;
  const op = new Operation(raw.cleanup ? 'cleanup' : 'migrate', typeof raw.instance === 'string' ? raw.instance : '');
  const parsed = MigrateInputSchema.safeParse(input);
  if (!parsed.success) throw opFailure(prereqError(describeZodError(parsed.error), 'wrong_input'));
  const req = parsed.data;
  if (req.allowFailover) {
    throw opFailure(prereqError('allowFailover: falling back to failover is not supported yet', 'wrong_input'));
  }

  const snap = await configActivities().loadClusterSnapshot();
  const cfg = configActivities(snap.cluster.timing);
  const rpc = new NodeRpcClient(snap);
  let reserved = false;
  try {
    const plan = await runPrereqs(
      op,
      snap,
      {
        instance: req.instance,
        failover: false,
        cleanup: req.cleanup,
        allowFailover: req.allowFailover,
        targetNode: req.targetNode,
        mode: req.mode,
        live: req.live,
        ignoreIpolicy: req.ignoreIpolicy,
      },
      rpc,
      cfg,
      () => (reserved = true),
    );
    const inst = snap.instances[plan.instance]!;
    op.setNodes(plan.operation, plan.sourceNode, plan.targetNode);
    if (plan.operation === 'failover') {
      throw opFailure(prereqError(`instance ${inst.name} must be failed over, which is not supported yet`, 'wrong_state'), op.feedback);
    }
    const base = { instance: inst.name, sourceNode: plan.sourceNode, targetNode: plan.targetNode };
    if (req.dryRun) {
      op.setPhase('done');
      return { outcome: 'dry-run', ...base, feedback: op.feedback, plan: describePlan(plan, inst) };
    }

    const x: Exec = { op, rpc, cfg, snap, inst, source: plan.sourceNode, target: plan.targetNode, live: plan.live, ignoreConsistency: false };
    op.fb(`Migrating instance ${inst.name}`);
    if (plan.operation === 'cleanup') {
      await execCleanup(x);
      return { outcome: 'cleaned-up', ...base, targetNode: x.target, feedback: op.feedback };
    }
    await execMigration(x, { plan, allowRuntimeChanges: req.allowRuntimeChanges, ignoreHvversions: req.ignoreHvversions });
    return { outcome: 'migrated', ...base, feedback: op.feedback };
  } catch (e) {
    op.setPhase(isCancellation(e) ? 'cancelled' : 'failed');
    throw withFeedback(e, op.feedback);
  } finally {
    if (reserved) await CancellationScope.nonCancellable(() => cfg.releaseTargetMemory());
  }
}
