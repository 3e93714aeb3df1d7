/**
 * Running hooks from the workflow (docs/behaviour.md §9 "Hooks"): one `runHooks` activity per node,
 * in parallel, each on that node's agent, sent once. A pre-hook failure on a reachable node vetoes the
 * operation before any change; post-hook failures are warnings. Offline nodes are skipped silently,
 * an unreachable node is a warning.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import { OpFailure } from '../domain/errors.js';
import {
  hookEnvironment,
  hookNodes,
  operationHookEnv,
  type FailoverHookArgs,
  type HookArgs,
  type HookPath,
  type HookPhase,
  type HookValue,
  type MigrateHookArgs,
  type StartHookArgs,
  type StopHookArgs,
} from '../domain/hook-env.js';
import type { MigrationPlan } from '../domain/prereq.js';
import type { ClusterSnapshot, Instance } from '../domain/types.js';
import type { Operation } from './operation.js';
import type { NodeRpcClient } from './rpc.js';

export interface HookPlan {
  path: HookPath;
  nodes: { pre: string[]; post: string[] };
  args: HookArgs;
  move: { source: string; target: string };
  preEnv: Record<string, HookValue>;
}

export function planHooks(snap: ClusterSnapshot, inst: Instance, plan: MigrationPlan, args: MigrateHookArgs | FailoverHookArgs): HookPlan {
  const move = { source: plan.sourceNode, target: plan.targetNode };
  return {
    path: args.path,
    nodes: hookNodes(args.path, snap, inst, move.source, move.target),
    args,
    move,
    preEnv: operationHookEnv(snap, inst, move, args),
  };
}

/** The hooks of `instance start` / `instance shutdown`: on the master, the primary and the secondaries. */
export function planPowerHooks(snap: ClusterSnapshot, inst: Instance, args: StartHookArgs | StopHookArgs): HookPlan {
  const move = { source: inst.primaryNode, target: inst.primaryNode };
  return {
    path: args.path,
    nodes: hookNodes(args.path, snap, inst, move.source, move.target),
    args,
    move,
    preEnv: operationHookEnv(snap, inst, move, args),
  };
}

export async function runHooksPhase(
  op: Operation,
  rpc: NodeRpcClient,
  snap: ClusterSnapshot,
  h: HookPlan,
  phase: HookPhase,
  /** Post phase: the instance as it is after the operation (Ganeti reloads it). */
  after?: Instance,
): Promise<void> {
  const env = hookEnvironment(snap, h.path, phase, h.preEnv, after ? operationHookEnv(snap, after, h.move, h.args) : undefined);
  const nodes = phase === 'pre' ? h.nodes.pre : h.nodes.post;
  const timeoutSec = snap.cluster.timing.hookTimeoutSec;
  const results = await Promise.all(
    nodes.map((n) => rpc.call(n, 'runHooks', [{ path: h.path, phase, env, timeoutSec }], `${h.path} ${phase}`, { once: true })),
  );
  const failures: Array<{ node: string; script: string; output: string }> = [];
  results.forEach((r, i) => {
    const node = nodes[i]!;
    if (!r.ok) {
      if (!r.offline) op.warn(`Communication failure to node ${node}: ${r.msg}`);
      return;
    }
    for (const s of r.payload) if (s.status === 'fail') failures.push({ node, script: s.script, output: s.output });
  });
  if (phase === 'post') {
    for (const f of failures) op.warn(`On ${f.node} script ${f.script} failed, output: ${f.output}`);
    return;
  }
  if (failures.length > 0) {
    const lines = failures.map((f) => `  node: ${f.node}, script: ${f.script}, output: ${f.output || '(no output)'}`);
    throw ApplicationFailure.create({
      type: OpFailure.HooksFailed,
      message: ['hooks execution failed:', ...lines].join('\n'),
      nonRetryable: true,
      details: [{ feedback: op.feedback, hooks: failures }],
    });
  }
}
