/**
 * Helpers for node-operation tests: start `node migrate` / `node failover`, collect their outcome,
 * and measure how many child operations overlapped (per cluster, source and target) from the
 * children's start and close times on the server.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { OperationError } from '../../client/api.js';
import { nodeOperationResult, startNodeFailover, startNodeMigration } from '../../client/node-api.js';
import { evacuationClusterConfig } from '../../adapters/sim/evacuation.js';
import type { NodeFailoverInput, NodeMigrateInput, NodeOperationResult } from '../../domain/node-ops.js';
import type { TestCluster, TestClusterOptions } from './cluster.js';

export const evacuationCluster = (nodes: number, instances: number, extra: Partial<TestClusterOptions> = {}): TestClusterOptions => ({
  base: (name) => evacuationClusterConfig(name, { nodes, instances }),
  ...extra,
});

export type NodeOutcome =
  { ok: true; result: NodeOperationResult } | { ok: false; error: OperationError; result: NodeOperationResult | null };

export async function nodeOutcome(h: WorkflowHandle): Promise<NodeOutcome> {
  try {
    return { ok: true, result: await nodeOperationResult(h) };
  } catch (e) {
    if (e instanceof OperationError) return { ok: false, error: e, result: (e.result as NodeOperationResult | undefined) ?? null };
    throw e;
  }
}

export const startNodeMigrate = (env: TestWorkflowEnvironment, c: TestCluster, input: NodeMigrateInput) =>
  startNodeMigration(env.client, input, { cluster: c.name, snapshot: c.cfg() });

export const startNodeFail = (env: TestWorkflowEnvironment, c: TestCluster, input: NodeFailoverInput) =>
  startNodeFailover(env.client, input, { cluster: c.name, snapshot: c.cfg() });

export interface Interval {
  instance: string;
  source: string;
  target: string | null;
  start: number;
  end: number;
}

/** The children's run intervals (their workflows' start and close times). */
export async function childIntervals(env: TestWorkflowEnvironment, r: NodeOperationResult): Promise<Interval[]> {
  const out: Interval[] = [];
  for (const e of r.instances) {
    if (!e.workflowId) continue;
    const d = await env.client.workflow.getHandle(e.workflowId).describe();
    out.push({
      instance: e.instance,
      source: e.sourceNode,
      target: e.targetNode,
      start: d.startTime.getTime(),
      end: (d.closeTime ?? new Date()).getTime(),
    });
  }
  return out;
}

/** The most intervals open at once, over all of them and grouped by `key`. */
export function maxOverlap(intervals: Interval[], key: (i: Interval) => string | null = () => 'all'): number {
  const groups = new Map<string, Interval[]>();
  for (const i of intervals) {
    const k = key(i);
    if (k === null) continue;
    groups.set(k, [...(groups.get(k) ?? []), i]);
  }
  let best = 0;
  for (const g of groups.values()) {
    const points = g.flatMap((i) => [
      { t: i.start, d: 1 },
      { t: i.end, d: -1 },
    ]);
    points.sort((a, b) => a.t - b.t || a.d - b.d);
    let open = 0;
    for (const p of points) best = Math.max(best, (open += p.d));
  }
  return best;
}
