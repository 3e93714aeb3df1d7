/**
 * The LU driver shared by the migrate and failover workflows (Ganeti's mcpu._ExecLU): CheckPrereq,
 * pre-hooks, stop for a dry run, Exec (migration, cleanup or failover), post-hooks on success. The
 * target-memory reservation made by the prerequisites is released on every exit path.
 *
 * Everything up to the point of no return runs in a cancellable scope that the `abort` update (and a
 * workflow cancellation from the Web UI) cancels; the execution paths then run their compensation
 * in a non-cancellable scope and the operation ends `Aborted` (or Canceled).
 */
import { ApplicationFailure, CancellationScope, isCancellation, log } from '@temporalio/workflow';
import { OpFailure, prereqError } from '../domain/errors.js';
import { completionTimeoutSec, policyLine, policyProblem, resolveMigrationPolicy, type MigrationPolicy } from '../domain/policy-rules.js';
import type { MigrationPolicyInput } from '../domain/policy.js';
import type { ClusterSnapshot, Instance } from '../domain/types.js';
import type { MigrateHookArgs, FailoverHookArgs } from '../domain/hook-env.js';
import type { OperationResult } from '../domain/ops.js';
import { describePlan, planSteps } from '../domain/plan.js';
import type { PrereqRequest } from '../domain/prereq.js';
import { operationSlice } from '../domain/slices.js';
import { execCleanup } from './cleanup.js';
import { Exec } from './exec.js';
import { execFailover } from './failover.js';
import { planHooks, runHooksPhase } from './hooks.js';
import { execMigration } from './migration.js';
import { opFailure, withFeedback, type Operation } from './operation.js';
import { runPrereqs } from './prereq.js';
import { configActivities, failMsg, NodeRpcClient } from './rpc.js';

export interface OperationRequest {
  /** Which LU: decides the hooks path and their environment. */
  lu: 'migrate' | 'failover';
  prereq: PrereqRequest;
  dryRun: boolean;
  reason: string;
  /** Failover parameters (the failover LU's, or the fixed ones of a migration that falls back). */
  shutdownTimeout: number;
  ignoreConsistency: boolean;
  allowRuntimeChanges: boolean;
  ignoreHvversions: boolean;
  /** The migration policy asked for (domain/policy.ts); unset fields fall back to the instance's and the cluster's. */
  policy?: MigrationPolicyInput | undefined;
}

export async function runOperation(op: Operation, req: OperationRequest): Promise<OperationResult> {
  const snap = await configActivities().loadClusterSnapshot(operationSlice(req.prereq));
  const cfg = configActivities(snap.cluster.timing);
  const rpc = new NodeRpcClient(snap);
  let reserved = false;
  /** Releases the target-memory reservation once; a failure is a warning (the next operation drops it). */
  const release = async (): Promise<void> => {
    if (!reserved) return;
    reserved = false;
    try {
      await CancellationScope.nonCancellable(() => cfg.releaseTargetMemory());
    } catch (e) {
      log.warn('releasing the memory reservation failed', { instance: op.instance, error: failMsg(e) });
      op.warn(`Could not release the memory reservation: ${failMsg(e)}; it is dropped when the next operation starts`);
    }
  };
  try {
    return await CancellationScope.cancellable(async () => {
      op.attachScope(CancellationScope.current());
      const plan = await runPrereqs(op, snap, req.prereq, rpc, cfg, () => (reserved = true));
      const inst = snap.instances[plan.instance]!;
      op.plan(plan.operation, plan.sourceNode, plan.targetNode, planSteps(plan, inst), plan.mode);
      const policy = plan.operation === 'migrate' ? choosePolicy(op, snap, inst, req.policy) : null;
      const hookArgs: MigrateHookArgs | FailoverHookArgs =
        req.lu === 'migrate'
          ? { path: 'instance-migrate', live: plan.live, cleanup: req.prereq.cleanup, allowRuntimeChanges: req.allowRuntimeChanges }
          : { path: 'instance-failover', ignoreConsistency: req.ignoreConsistency, shutdownTimeout: req.shutdownTimeout };
      const hooks = planHooks(snap, inst, plan, hookArgs);
      op.step('pre-hooks');
      await runHooksPhase(op, rpc, snap, hooks, 'pre');

      const base = { instance: inst.name, sourceNode: plan.sourceNode, targetNode: plan.targetNode };
      if (req.dryRun) {
        op.finish('done');
        return { outcome: 'dry-run', ...base, feedback: op.feedback, plan: describePlan(plan, inst) };
      }

      let x = new Exec({ op, rpc, cfg, snap, inst, source: plan.sourceNode, target: plan.targetNode, releaseReservation: release });
      let outcome: OperationResult['outcome'];
      if (plan.operation === 'failover') {
        op.fb(`Failover instance ${inst.name}`);
        await execFailover(x, { shutdownTimeout: req.shutdownTimeout, reason: req.reason, ignoreConsistency: req.ignoreConsistency });
        outcome = 'failed-over';
      } else {
        op.fb(`Migrating instance ${inst.name}`);
        if (plan.operation === 'cleanup') {
          x = await execCleanup(x, { live: plan.live });
          outcome = 'cleaned-up';
        } else {
          await execMigration(x, { plan, allowRuntimeChanges: req.allowRuntimeChanges, ignoreHvversions: req.ignoreHvversions, policy });
          outcome = 'migrated';
        }
      }
      await CancellationScope.nonCancellable(async () => {
        op.step('post-hooks');
        await runHooksPhase(op, rpc, snap, hooks, 'post', x.inst);
      });
      op.finish('done');
      return { outcome, ...base, targetNode: x.target, feedback: op.feedback };
    });
  } catch (e) {
    throw operationEnded(e, op);
  } finally {
    await release();
  }
}

/** Resolves the migration's policy and shows it; a contradictory one is refused (nothing was changed). */
function choosePolicy(op: Operation, snap: ClusterSnapshot, inst: Instance, requested: MigrationPolicyInput | undefined): MigrationPolicy {
  const resolved = resolveMigrationPolicy(requested, inst.hvparams, snap.cluster);
  const memory = inst.beparams.maxmem;
  op.setPolicy({ ...resolved, completionTimeoutSec: completionTimeoutSec(resolved.policy, memory), line: policyLine(resolved, memory) });
  const problem = policyProblem(resolved.policy);
  if (problem) throw opFailure(prereqError(`invalid migration policy: ${problem}`, 'wrong_input'), op.feedback);
  return resolved.policy;
}

/** An operation's execution threw `e`: finishes the operation and returns what the workflow fails with. */
export function operationEnded(e: unknown, op: Operation): unknown {
  if (op.abort && isCancellation(e)) {
    op.finish('aborted');
    const reason = op.abort.reason ? ` (${op.abort.reason})` : '';
    return withFeedback(
      ApplicationFailure.create({
        type: OpFailure.Aborted,
        message: `${op.title}: aborted by the operator during ${op.abort.phase}${reason}; ${op.abortOutcome ?? 'nothing was changed'}`,
        nonRetryable: true,
      }),
      op,
    );
  }
  op.finish(isCancellation(e) ? 'cancelled' : 'failed');
  return withFeedback(e, op);
}
