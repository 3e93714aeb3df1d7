/**
 * One-line operation summaries for the Temporal Web UI (`staticSummary`), e.g.
 * "Migrate web1: node1 → node2, live", "Start web1 on node1". Pure; the nodes come from a configuration snapshot when the
 * caller has one (the target of an allocator-placed instance is only known once the workflow ran).
 */
import { filledHvParams, secondaryNodes, mirrorKind } from './instance.js';
import type { FailoverRequest, MigrateRequest, ShutdownRequest, StartupRequest } from './ops.js';
import type { ClusterSnapshot } from './types.js';

function move(snap: ClusterSnapshot | undefined, instance: string, targetNode: string | undefined): string {
  const inst = snap?.instances[instance];
  if (!inst) return targetNode ? ` → ${targetNode}` : '';
  // Stryker disable next-line ConditionalExpression: equivalent: only internally mirrored (DRBD) instances have secondaries, so `true` also yields undefined for the others
  const target = targetNode ?? (mirrorKind(inst) === 'internal' ? secondaryNodes(inst)[0] : undefined) ?? 'allocator';
  return `: ${inst.primaryNode} → ${target}`;
}

export function migrateSummary(req: MigrateRequest, snap?: ClusterSnapshot): string {
  if (req.cleanup) return `Cleanup after a failed migration of ${req.instance}${req.dryRun ? ' (dry run)' : ''}`;
  const inst = snap?.instances[req.instance];
  const mode =
    req.mode ??
    (req.live !== undefined ? (req.live ? 'live' : 'non-live') : inst && snap ? filledHvParams(snap, inst).migration_mode : 'default mode');
  return `Migrate ${req.instance}${move(snap, req.instance, req.targetNode)}, ${mode}${req.allowFailover ? ' (failover allowed)' : ''}${req.dryRun ? ' (dry run)' : ''}`;
}

export function failoverSummary(req: FailoverRequest, snap?: ClusterSnapshot): string {
  return `Failover ${req.instance}${move(snap, req.instance, req.targetNode)}${req.ignoreConsistency ? ', ignoring consistency' : ''}${req.dryRun ? ' (dry run)' : ''}`;
}

const onPrimary = (snap: ClusterSnapshot | undefined, instance: string): string => {
  const node = snap?.instances[instance]?.primaryNode;
  return node ? ` on ${node}` : '';
};

export function startupSummary(req: StartupRequest, snap?: ClusterSnapshot): string {
  return `Start ${req.instance}${onPrimary(snap, req.instance)}${req.force ? ', forced' : ''}${req.noRemember ? ' (not remembered)' : ''}${req.dryRun ? ' (dry run)' : ''}`;
}

export function shutdownSummary(req: ShutdownRequest, snap?: ClusterSnapshot): string {
  return `Shut down ${req.instance}${onPrimary(snap, req.instance)}, timeout ${req.timeout} s${req.noRemember ? ' (not remembered)' : ''}${req.dryRun ? ' (dry run)' : ''}`;
}
