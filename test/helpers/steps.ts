/** Reading the simulated RPC log as the sequence of state-changing steps an operation took. */
import { READ_ONLY_RPCS } from '../../adapters/sim/state.js';
import type { TestCluster } from './cluster.js';

/**
 * The state-changing RPCs on an instance, in order; the same RPC (and detail) sent to both nodes in
 * parallel collapses into one step `rpc(detail)@nodeA+nodeB`.
 */
export function mutatingSteps(c: TestCluster, instance: string, sinceSeq = 0): string[] {
  const out: Array<{ key: string; nodes: string[] }> = [];
  for (const e of c.log({ instance, outcome: 'ok' })) {
    if (e.seq <= sinceSeq || READ_ONLY_RPCS.has(e.rpc)) continue;
    const key = `${e.rpc}${e.detail ? `(${e.detail})` : ''}`;
    const last = out[out.length - 1];
    if (last && last.key === key && !last.nodes.includes(e.node)) last.nodes.push(e.node);
    else out.push({ key, nodes: [e.node] });
  }
  const steps = out.map((s) => `${s.key}@${s.nodes.sort().join('+')}`);
  // A migration finalizes both sides at once (workflows/migration.ts, FINALIZE_TOGETHER): which of
  // the two the log has first is a race, so the pair is shown in Ganeti's order, source first.
  for (let i = 0; i + 1 < steps.length; i++) {
    if (
      steps[i]!.startsWith('instance_finalize_migration_dst(success)@') &&
      steps[i + 1]!.startsWith('instance_finalize_migration_src(success)@')
    ) {
      [steps[i], steps[i + 1]] = [steps[i + 1]!, steps[i]!];
    }
  }
  return steps;
}

/** A failed migration of an instance from node1 to node2, from its abort on (see `stepsFromAbort`). */
export const ABORT_AND_REVERT_NODE1_NODE2 = [
  'instance_finalize_migration_dst(failure)@node2',
  'instance_finalize_migration_src(failure)@node1',
  'blockdev_close@node2',
  'drbd_disconnect_net@node1+node2',
  'drbd_attach_net(single-master)@node1+node2',
];

/** The instance's state-changing steps from the abort of a failed migration to `target` on. */
export function stepsFromAbort(c: TestCluster, instance: string, target = 'node2'): string[] {
  const steps = mutatingSteps(c, instance);
  return steps.slice(steps.indexOf(`instance_finalize_migration_dst(failure)@${target}`));
}

export const lastSeq = (c: TestCluster): number => c.state().logSeq;

/** How often each state-changing RPC ran on the instance (per node). */
export function mutatingCounts(c: TestCluster, instance: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of c.log({ instance, outcome: 'ok' })) {
    if (READ_ONLY_RPCS.has(e.rpc)) continue;
    const k = `${e.rpc}@${e.node}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

export const withoutProgress = (lines: string[]): string[] =>
  lines.filter((l) => !l.startsWith('   - progress:') && !l.startsWith('* memory transfer progress:'));

/** Waits until `step` (as `mutatingSteps` names it, e.g. `instance_migration_control(start-postcopy)@node1`) took effect. */
export async function waitForStep(c: TestCluster, instance: string, step: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!mutatingSteps(c, instance).includes(step)) {
    if (Date.now() > deadline) throw new Error(`${step} did not happen within ${timeoutMs} ms: ${mutatingSteps(c, instance).join(', ')}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}
