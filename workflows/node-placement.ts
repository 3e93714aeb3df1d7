/**
 * Where a node operation sends an externally mirrored instance without an explicit target: the
 * built-in allocator's rule (most free memory in the group, online, undrained, vm-capable), measured
 * now with node_info, minus every memory reservation of running operations and minus what our own
 * children that have started but not reserved yet will reserve — so children running at once never
 * overcommit a node — and only among targets with an incoming slot left.
 */
import type { OrchestratorActivities } from '../activities/index.js';
import { placeInstance, type PlacementCandidate } from '../domain/node-plan.js';
import { allocatorCandidates } from '../domain/prereq.js';
import type { ClusterSnapshot, Instance } from '../domain/types.js';
import type { NodeRpcClient } from './rpc.js';

/** A child of ours that runs now: its target and the memory it reserves there (maxmem). */
export interface OwnChild {
  workflowId: string;
  target: string | null;
  memory: number;
}

/**
 * `node`: the chosen target; `wait`: a target with memory exists but has no incoming slot now;
 * `none`: no node has the memory (the child runs the allocator itself and says so).
 */
export type Placement = { kind: 'node'; node: string } | { kind: 'wait' } | { kind: 'none' };

export async function placeExternal(
  snap: ClusterSnapshot,
  inst: Instance,
  failover: boolean,
  rpc: NodeRpcClient,
  cfg: OrchestratorActivities,
  own: readonly OwnChild[],
  hasIncomingSlot: (node: string) => boolean,
): Promise<Placement> {
  const nodes = allocatorCandidates(snap, inst).map((n) => n.name);
  if (nodes.length === 0) return { kind: 'none' };
  const [reservations, infos] = await Promise.all([cfg.memoryReservations(), Promise.all(nodes.map((n) => rpc.call(n, 'nodeInfo', [])))]);
  const reservedBy = new Set(reservations.map((r) => r.workflowId));
  const candidates: PlacementCandidate[] = [];
  nodes.forEach((node, i) => {
    const info = infos[i];
    if (!info?.ok) return;
    const reserved = reservations.filter((r) => r.node === node).reduce((a, r) => a + r.memory, 0);
    const pending = own.filter((c) => c.target === node && !reservedBy.has(c.workflowId)).reduce((a, c) => a + c.memory, 0);
    candidates.push({ node, free: info.payload.memoryFree - reserved - pending });
  });
  const required = failover && inst.adminState !== 'up' ? 0 : inst.beparams.minmem;
  const node = placeInstance(candidates, required, hasIncomingSlot);
  if (node) return { kind: 'node', node };
  return placeInstance(candidates, required, () => true) ? { kind: 'wait' } : { kind: 'none' };
}
