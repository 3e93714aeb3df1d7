/**
 * Snapshots are slices (issue 12): an operation loads the cluster parameters plus only the instances
 * it acts on and the nodes it needs, so its history does not grow with the cluster and no other
 * instance's data enters it. The configuration activity reads the instances by scope and keeps the
 * nodes `sliceNodes` picks (nodes are small and hold no secrets).
 */
import { instanceNodes, mirrorKind } from './instance.js';
import type { SnapshotScope } from './ports.js';
import type { ClusterSnapshot } from './types.js';

export interface SliceRequest {
  /** The instances by name (omitted: no restriction by name). */
  instances?: string[];
  /** Only instances whose primary is this node (a node operation's own instances). */
  primaryOn?: string;
  /**
   * The nodes besides the master and the loaded instances' own (primary, secondaries): `all`, or
   * names (a named target). Omitted: none besides those.
   */
  nodes?: 'all' | string[];
  /** Every node when a loaded instance is externally mirrored and no node is named: the allocator's candidates. */
  allocator?: boolean;
}

/** What the store is asked for: the instances of the slice, with every node (picked by `sliceNodes`). */
export function sliceScope(req: SliceRequest): SnapshotScope {
  const scope: SnapshotScope = {};
  if (req.instances) scope.instances = req.instances;
  if (req.primaryOn !== undefined) scope.primaryOn = req.primaryOn;
  return scope;
}

/** `snap` (all nodes, the slice's instances) reduced to the nodes the request needs. */
export function sliceNodes(snap: ClusterSnapshot, req: SliceRequest): ClusterSnapshot {
  const named = Array.isArray(req.nodes) ? req.nodes : [];
  const insts = Object.values(snap.instances);
  const all = req.nodes === 'all' || (req.allocator === true && named.length === 0 && insts.some((i) => mirrorKind(i) === 'external'));
  if (all) return snap;
  const keep = new Set([snap.cluster.masterNode, ...named, ...insts.flatMap(instanceNodes)]);
  return { ...snap, nodes: Object.fromEntries(Object.entries(snap.nodes).filter(([name]) => keep.has(name))) };
}

/**
 * What a migration or failover loads: its instance, the master and the instance's nodes, the named
 * target; every node when the cleanup looks for the instance or the allocator picks the target.
 */
export function operationSlice(p: { instance: string; cleanup: boolean; targetNode?: string | undefined }): SliceRequest {
  const slice: SliceRequest = { instances: [p.instance], allocator: true };
  if (p.cleanup) slice.nodes = 'all';
  else if (p.targetNode !== undefined) slice.nodes = [p.targetNode];
  return slice;
}
