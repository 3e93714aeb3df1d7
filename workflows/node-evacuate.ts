/**
 * The scheduler of a node operation (`node migrate`, `node failover`): every instance whose primary
 * is the node runs as a child instance operation under its own ID `instance/<name>`, at most C at
 * once, O leaving one source and I arriving on one target (the limits are per node operation: see
 * docs/behaviour.md). A busy instance (another operation runs under its ID) is waited for; a failing
 * child does not stop the others unless asked; an abort starts nothing more and aborts the running
 * children that have not passed their point of no return.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  isCancellation,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import { OpFailure } from '../domain/errors.js';
import { workflowIdFor } from '../domain/naming.js';
import {
  effectiveLimits,
  fitsLimits,
  knownTarget,
  nodeOperationSummary,
  primaryInstances,
  type NodeInstanceResult,
  type NodeOperationResult,
  type Slot,
} from '../domain/node-plan.js';
import type { NodeFailoverRequest, NodeMigrateRequest } from '../domain/node-ops.js';
import type { OperationResult } from '../domain/ops.js';
import type { Instance } from '../domain/types.js';
import { childStart, type ChildSpec } from './node-children.js';
import type { NodeOperation } from './node-operation.js';
import { placeExternal, type OwnChild } from './node-placement.js';
import { configActivities, failMsg, NodeRpcClient } from './rpc.js';

export type NodeRequest = ({ kind: 'node-migrate' } & NodeMigrateRequest) | ({ kind: 'node-failover' } & NodeFailoverRequest);

interface Running {
  slot: Slot;
  memory: number;
  workflowId: string | null;
  runId: string | null;
  scope: CancellationScope;
  abortSent: boolean;
}

const failure = (type: string, message: string, op: NodeOperation, result?: NodeOperationResult, code?: string): ApplicationFailure =>
  ApplicationFailure.create({
    type,
    message,
    nonRetryable: true,
    details: [
      {
        feedback: op.feedback,
        ...(code ? { code } : {}),
        ...(result ? { result } : {}),
        ...(op.needsOperator ? { needsOperator: true } : {}),
      },
    ],
  });

export async function runNodeOperation(op: NodeOperation, req: NodeRequest): Promise<NodeOperationResult> {
  try {
    return await run(op, req);
  } catch (e) {
    if (isCancellation(e)) op.finish('cancelled');
    else if (!(e instanceof ApplicationFailure)) op.finish('failed');
    throw e;
  }
}

async function run(op: NodeOperation, req: NodeRequest): Promise<NodeOperationResult> {
  // The node's primary instances and every node (the allocator's candidates): no other instance.
  let snap = await configActivities().loadClusterSnapshot({ primaryOn: req.node, nodes: 'all' });
  const cfg = configActivities(snap.cluster.timing);
  const node = snap.nodes[req.node];
  if (!node) {
    op.finish('failed');
    throw failure(OpFailure.PrereqFailed, `Node '${req.node}' not known`, op, undefined, 'unknown_entity');
  }
  const failover = req.kind === 'node-failover';
  const limits = effectiveLimits(snap, req.limits);
  const insts = primaryInstances(snap, req.node);
  const targetNode = req.kind === 'node-migrate' ? req.targetNode : undefined;
  const entries: NodeInstanceResult[] = insts.map((i) => {
    const t = knownTarget(i, targetNode);
    return {
      instance: i.name,
      state: 'waiting',
      workflowId: null,
      sourceNode: req.node,
      targetNode: t === 'allocator' ? null : t,
      outcome: null,
      error: null,
      needsOperator: false,
      repair: null,
    };
  });
  op.begin(entries, limits, nodeOperationSummary(req.kind, req, insts.length, limits));

  if (req.drain && !req.dryRun && !node.drained) {
    op.fb(`Marking node ${req.node} drained`);
    await cfg.setNodeDrained({ node: req.node, drained: true });
  }
  if (insts.length === 0) {
    op.fb(`No primary instances on node ${req.node}, exiting.`);
    op.finish('done');
    return result(op, req, limits);
  }
  op.fb(
    `${failover ? 'Fail over' : 'Migrate'} instance(s) ${insts.map((i) => i.name).join(', ')}: at most ${limits.maxConcurrent} at once, ` +
      `${limits.maxOutgoing} leaving a node, ${limits.maxIncoming} arriving on a node${req.dryRun ? ' (dry run: nothing moves)' : ''}`,
  );

  const rpc = new NodeRpcClient(snap);
  const running = new Map<string, Running>();
  const slots = (): Slot[] => [...running.values()].map((r) => r.slot);
  const own = (): OwnChild[] =>
    [...running.values()].map((r) => ({ workflowId: r.workflowId ?? '', target: r.slot.target, memory: r.memory }));
  const retryMs = snap.cluster.timing.retryMaximumIntervalMs;

  const sendAbort = (name: string, r: Running): void => {
    if (r.abortSent || !r.workflowId) return;
    r.abortSent = true;
    void (async () => {
      try {
        const a = await cfg.abortInstanceOperation({ workflowId: r.workflowId!, runId: r.runId, reason: op.abort?.reason ?? '' });
        op.fb(a.accepted ? `Instance ${name}: abort accepted` : `Instance ${name}: abort refused, it rolls forward: ${a.message}`);
      } catch (e) {
        // No way to send the update: cancel the child instead (the same effect, without the reason).
        op.fb(`Instance ${name}: could not send the abort (${failMsg(e)}); cancelling it`);
        r.scope.cancel();
      }
    })();
  };

  /** Gives back an instance's cluster-wide slot; a failure is only a warning (the lease dies with this run). */
  const release = async (name: string): Promise<void> => {
    try {
      await CancellationScope.nonCancellable(() => cfg.releaseEvacuationSlot({ instance: name }));
    } catch (e) {
      op.fb(` - WARNING: could not release the evacuation slot of ${name}: ${failMsg(e)}; it is dropped when this operation ends`);
    }
  };

  const launch = (inst: Instance, target: string | null, spec: ChildSpec, leased: boolean): void => {
    const scope = new CancellationScope();
    const r: Running = {
      slot: { source: req.node, target },
      memory: inst.beparams.maxmem,
      workflowId: null,
      runId: null,
      scope,
      abortSent: false,
    };
    running.set(inst.name, r);
    op.update(inst.name, { state: 'running', targetNode: target });
    void (async () => {
      let busy = false;
      try {
        const res = await scope.run(async () => {
          const h = await spec.start();
          r.workflowId = h.workflowId;
          r.runId = h.firstExecutionRunId;
          op.update(inst.name, { workflowId: h.workflowId });
          op.fb(`Instance ${inst.name}: ${spec.verb} started (${h.workflowId})`);
          if (op.abort) sendAbort(inst.name, r);
          return (await h.result()) as OperationResult;
        });
        op.update(inst.name, { state: 'done', outcome: res.outcome, targetNode: res.targetNode });
        op.fb(`Instance ${inst.name}: ${res.outcome} to ${res.targetNode}`);
      } catch (e) {
        if (e instanceof Error && e.name === 'WorkflowExecutionAlreadyStartedError') busy = true;
        else childFailed(inst.name, e);
      }
      if (leased) await release(inst.name);
      running.delete(inst.name);
      if (busy) await waitBusy(inst.name);
      op.wake++;
    })();
  };

  /** Another operation runs under the instance's ID: wait, then retry if it is still on the node. */
  const waitBusy = async (name: string): Promise<void> => {
    if (op.entry(name).state !== 'busy') {
      op.fb(`Instance ${name} is busy: another operation runs on it (${workflowIdFor(name)}); waiting for it`);
    }
    op.update(name, { state: 'busy' });
    await sleep(retryMs);
    if (op.stopStarting) return;
    op.update(name, { state: 'waiting' });
  };

  const childFailed = (name: string, e: unknown): void => {
    const cause = e instanceof ChildWorkflowFailure ? e.cause : e;
    const details = (cause instanceof ApplicationFailure ? (cause.details?.[0] ?? {}) : {}) as { needsOperator?: boolean; repair?: string };
    const aborted = isCancellation(cause) || (cause instanceof ApplicationFailure && cause.type === OpFailure.Aborted);
    const type = cause instanceof ApplicationFailure ? (cause.type ?? 'Failed') : isCancellation(cause) ? 'Cancelled' : 'Failed';
    const message = cause instanceof Error ? cause.message : String(cause);
    op.update(name, {
      state: aborted ? 'aborted' : 'failed',
      error: { type, message },
      needsOperator: !!details.needsOperator,
      repair: details.repair ?? null,
    });
    op.fb(`Instance ${name}: ${aborted ? 'aborted' : 'failed'}: ${message}`);
    if (!aborted && req.stopOnFailure) op.stop(`Stopping on the failure of ${name} (--stop-on-failure): no further instance starts`);
  };

  /** Instances told they wait for a slot another node operation holds; a retry is scheduled. */
  const slotWaits = new Set<string>();
  let slotRetry = false;
  for (;;) {
    // Taken before the round's awaits: whatever changes meanwhile (a child ends while a slot is
    // leased) starts another round at once instead of waiting for the next change.
    const seen = op.wake;
    if (op.abort) for (const [name, r] of running) sendAbort(name, r);
    if (op.stopStarting) {
      for (const e of op.entries) if (e.state === 'waiting' || e.state === 'busy') op.update(e.instance, { state: 'not-started' });
    } else {
      const ready = op.entries.filter((e) => e.state === 'waiting');
      if (ready.length > 0 && ready.some((e) => fitsLimits(limits, slots(), req.node, e.targetNode))) {
        // A fresh look before starting: an instance moved by someone else meanwhile (one we waited
        // for as busy, say) is not ours to move.
        snap = await cfg.loadClusterSnapshot({ instances: ready.map((e) => e.instance), nodes: 'all' });
        for (const e of ready) {
          if (op.stopStarting) break;
          const inst = snap.instances[e.instance];
          if (!inst || inst.primaryNode !== req.node) {
            op.update(e.instance, { state: 'skipped', targetNode: null });
            op.fb(`Instance ${e.instance} is no longer on node ${req.node}${inst ? ` (now on ${inst.primaryNode})` : ''}, skipped`);
            continue;
          }
          const known = knownTarget(inst, targetNode);
          let target = known === 'allocator' ? null : known;
          if (!fitsLimits(limits, slots(), req.node, target)) continue;
          if (known === 'allocator') {
            const hasSlot = (n: string) => fitsLimits(limits, slots(), req.node, n);
            const p = await placeExternal(snap, inst, failover || inst.adminState !== 'up', rpc, cfg, own(), hasSlot);
            if (p.kind === 'wait' || op.stopStarting || op.entry(e.instance).state !== 'waiting') continue;
            target = p.kind === 'node' ? p.node : null;
            if (!fitsLimits(limits, slots(), req.node, target)) continue;
          }
          // The limits across the cluster (every node operation's children): a lease in the configuration.
          let leased = false;
          if (!req.dryRun) {
            const slot = await cfg.acquireEvacuationSlot({ instance: inst.name, source: req.node, target, limits });
            if (!slot.granted) {
              if (!slotWaits.has(inst.name)) {
                slotWaits.add(inst.name);
                op.fb(`Instance ${inst.name} waits for a slot: ${slot.reason}`);
              }
              if (!slotRetry) {
                slotRetry = true;
                void sleep(retryMs).then(() => {
                  slotRetry = false;
                  op.wake++;
                });
              }
              if (slot.limit === 'target') continue;
              break;
            }
            leased = true;
            if (op.stopStarting) {
              await release(inst.name);
              break;
            }
          }
          launch(inst, target, childStart(req, inst, known === 'allocator' ? target : null, snap, workflowInfo().workflowId), leased);
        }
      }
    }
    if (op.allFinal && running.size === 0) break;
    await condition(() => op.wake !== seen);
  }
  return conclude(op, req, limits);
}

function result(op: NodeOperation, req: NodeRequest, limits: NodeOperationResult['limits']): NodeOperationResult {
  return {
    operation: req.kind,
    node: req.node,
    dryRun: req.dryRun,
    limits,
    instances: [...op.entries],
    errors: op.errors,
    feedback: op.feedback,
  };
}

function conclude(op: NodeOperation, req: NodeRequest, limits: NodeOperationResult['limits']): NodeOperationResult {
  const errors = op.errors;
  const total = op.entries.length;
  if (op.abort) {
    const moved = op.entries.filter((e) => e.state === 'done').length;
    op.fb(`Aborted by the operator: ${moved} of ${total} instance(s) done, ${errors} not`);
    op.finish('aborted');
    throw failure(OpFailure.Aborted, `aborted by the operator: ${moved} of ${total} instance(s) done`, op, result(op, req, limits));
  }
  if (errors === 0) {
    op.fb(req.kind === 'node-migrate' ? 'All instances migrated successfully.' : `All ${total} instance(s) failed over successfully.`);
    op.finish('done');
    return result(op, req, limits);
  }
  const msg =
    req.kind === 'node-migrate'
      ? `There were ${errors} errors during the node migration.`
      : `There were errors during the failover: ${errors} error(s) out of ${total} instance(s).`;
  op.fb(msg);
  op.finish('failed');
  throw failure(OpFailure.ExecutionFailed, msg, op, result(op, req, limits));
}
