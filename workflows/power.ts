/**
 * LUInstanceStartup and LUInstanceShutdown (docs/behaviour.md §14 "Start and shutdown"), one driver
 * for both: CheckPrereq, pre-hooks, stop for a dry run, Exec, post-hooks. Start marks the instance up,
 * assembles its disks (secondaries, then the primary) and starts it on the primary; shutdown marks it
 * down, shuts it down (soft, then forced after the timeout) and deactivates the disks everywhere.
 *
 * An abort is accepted until Exec begins (its first change); from there the operation rolls forward.
 * The start's memory reservation on the primary is released once the instance runs, and on every
 * exit path.
 */
import { CancellationScope, log } from '@temporalio/workflow';
import { startCommand } from '../domain/naming.js';
import type { OperationResult } from '../domain/ops.js';
import { powerSteps } from '../domain/plan.js';
import { checkPowerPrereq, type PowerPlan } from '../domain/power.js';
import type { OrchestratorActivities } from '../activities/index.js';
import type { ClusterSnapshot } from '../domain/types.js';
import { assembleInstanceDisks, shutdownInstanceDisks } from './disks.js';
import { Exec, ri } from './exec.js';
import { planPowerHooks, runHooksPhase } from './hooks.js';
import { execFailure, isExecFailure, opFailure, type Operation } from './operation.js';
import { gatherFact } from './prereq.js';
import { configActivities, failMsg, NodeRpcClient } from './rpc.js';
import { operationEnded } from './run-operation.js';

interface Common {
  instance: string;
  /** Record the admin state (Ganeti's default; `--no-remember` turns it off). */
  remember: boolean;
  dryRun: boolean;
  reason: string;
}
export type PowerRequest = (Common & { kind: 'start'; force: boolean }) | (Common & { kind: 'shutdown'; timeout: number });

export async function runPowerOperation(op: Operation, req: PowerRequest): Promise<OperationResult> {
  // The instance, its nodes and the master (hooks): nothing else of the cluster.
  const snap = await configActivities().loadClusterSnapshot({ instances: [req.instance] });
  const cfg = configActivities(snap.cluster.timing);
  const rpc = new NodeRpcClient(snap);
  let reserved = false;
  /** Releases the start's memory reservation once; a failure is a warning (the next operation drops it). */
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
      const plan = await powerPrereqs(op, snap, req, rpc, cfg, () => (reserved = true));
      const inst = snap.instances[plan.instance]!;
      const steps = powerSteps(req.kind, inst, { running: plan.running, remember: req.remember });
      op.plan(req.kind, plan.node, plan.node, steps, null);
      const hooks = planPowerHooks(
        snap,
        inst,
        req.kind === 'start' ? { path: 'instance-start', force: req.force } : { path: 'instance-stop', timeout: req.timeout },
      );
      op.step('pre-hooks');
      await runHooksPhase(op, rpc, snap, hooks, 'pre');

      const base = { instance: inst.name, sourceNode: plan.node, targetNode: plan.node };
      if (req.dryRun) {
        op.finish('done');
        const summary = { operation: req.kind, sourceNode: plan.node, targetNode: plan.node, mode: null, steps: steps.map((s) => s.label) };
        return { outcome: 'dry-run', ...base, feedback: op.feedback, plan: summary };
      }

      const x = new Exec({ op, rpc, cfg, snap, inst, source: plan.node, target: plan.node });
      op.abortIfRequested();
      op.passPointOfNoReturn(
        req.kind === 'start' ? `the instance is being started on ${plan.node}` : `the instance is being shut down on ${plan.node}`,
      );
      await CancellationScope.nonCancellable(async () => {
        try {
          if (req.kind === 'start') await execStartup(x, plan, req);
          else await execShutdown(x, req);
        } catch (e) {
          if (isExecFailure(e) && !op.needsOperator) {
            op.needsHuman(
              req.kind === 'start'
                ? `fix the cause, then run '${startCommand(inst.name)}' again`
                : `fix the cause, then run 'ganeti-temporal instance shutdown ${inst.name}' again`,
            );
          }
          throw e;
        }
        await release(); // running (or stopped): the memory is the instance's now
        op.step('post-hooks');
        await runHooksPhase(op, rpc, snap, hooks, 'post', x.inst);
      });
      op.finish('done');
      return { outcome: req.kind === 'start' ? 'started' : 'stopped', ...base, feedback: op.feedback };
    });
  } catch (e) {
    throw operationEnded(e, op);
  } finally {
    await release();
  }
}

/** Drives the pure `checkPowerPrereq`, gathering exactly the facts it asks for. */
async function powerPrereqs(
  op: Operation,
  snap: ClusterSnapshot,
  req: PowerRequest,
  rpc: NodeRpcClient,
  cfg: OrchestratorActivities,
  onReserve: () => void,
): Promise<PowerPlan> {
  const facts: Record<string, Awaited<ReturnType<typeof gatherFact>>> = {};
  for (;;) {
    const out = checkPowerPrereq(snap, { kind: req.kind, instance: req.instance }, facts);
    if (out.status === 'ok') {
      out.plan.feedback.forEach((l) => op.fb(l));
      return out.plan;
    }
    if (out.status === 'failed') {
      out.feedback.forEach((l) => op.fb(l));
      throw opFailure(out.error, op.feedback);
    }
    if (out.facts.some((f) => f.kind === 'reserve-memory')) onReserve();
    const got = await Promise.all(out.facts.map((f) => gatherFact(f, snap, req.instance, rpc, cfg)));
    out.facts.forEach((f, i) => (facts[f.key] = got[i]!));
  }
}

/** LUInstanceStartup.Exec: mark up, StartInstanceDisks, instance_start on the primary. */
async function execStartup(x: Exec, plan: PowerPlan, req: { force: boolean; remember: boolean; reason: string }): Promise<void> {
  const P = plan.node;
  if (req.remember) {
    x.op.step('admin-state');
    await x.setAdminState('up');
  }
  if (plan.running) {
    // Ganeti re-assembles the (assembled) disks and sends instance_start, which the node ignores.
    x.op.fb(` - INFO: Instance '${x.inst.name}' is already running on ${P}, not starting it`);
    return;
  }
  x.op.step('activate-disks');
  if (!(await assembleInstanceDisks(x, { ignoreSecondaries: req.force }))) {
    await shutdownInstanceDisks(x, false);
    if (!req.force) x.op.fb("      Hint: If the message above refers to a secondary node, you can retry the operation using '--force'");
    throw execFailure('Disk consistency error');
  }
  x.op.step('start');
  const started = await x.rpc.call(P, 'instanceStart', [ri(x, P), req.reason]);
  if (!started.ok) {
    await shutdownInstanceDisks(x, false);
    throw execFailure(`Could not start instance: ${started.msg}`);
  }
}

/** LUInstanceShutdown.Exec: mark down, instance_shutdown (soft, then forced), ShutdownInstanceDisks. */
async function execShutdown(x: Exec, req: { timeout: number; remember: boolean; reason: string }): Promise<void> {
  const P = x.inst.primaryNode;
  if (req.remember) {
    x.op.step('admin-state');
    await x.setAdminState('down');
  }
  x.op.step('shutdown');
  const down = await x.rpc.call(P, 'instanceShutdown', [ri(x, P), req.timeout, req.reason], `timeout ${req.timeout} s`, {
    minTimeoutSec: req.timeout + 60,
  });
  if (!down.ok) x.op.warn(`Could not shutdown instance: ${down.msg}`);
  x.op.step('deactivate-disks');
  // Ganeti ignores the result here: each failure is a warning, the instance is down.
  await shutdownInstanceDisks(x, false);
}
