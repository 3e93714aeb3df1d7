/**
 * The plain part of the node operations (domain/node-ops.ts): instance states, results, limits and
 * placement, without zod, so that the workflow bundle builds no zod schema per workflow.
 * domain/node-ops.ts re-exports all of it next to the input schemas. Pure.
 */
import { mirrorKind, secondaryNodes } from './instance.js';
import { EVACUATION_DEFAULTS } from './model.js';
import type { LimitOverrides, NodeFailoverRequest, NodeMigrateRequest } from './node-ops.js';
import type { ClusterSnapshot, EvacuationLimits, Instance } from './types.js';

export type NodeOperationKind = 'node-migrate' | 'node-failover';

/**
 * Where an instance of a node operation is: `waiting` (not started yet), `busy` (another operation
 * runs on it; retried), `running`, then `done`, `failed`, `aborted` (its abort was accepted),
 * `skipped` (no longer on the node when its turn came) or `not-started` (the node operation was
 * aborted or stopped on a failure first).
 */
export const INSTANCE_STATES = ['waiting', 'busy', 'running', 'done', 'failed', 'aborted', 'skipped', 'not-started'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];
export const isFinal = (s: InstanceState): boolean => s !== 'waiting' && s !== 'busy' && s !== 'running';

export interface NodeInstanceResult {
  instance: string;
  state: InstanceState;
  /** The child's workflow ID (`instance/<name>`) once started. */
  workflowId: string | null;
  sourceNode: string;
  /** The known or chosen target; null until the allocator chose one (or when there is none). */
  targetNode: string | null;
  /** The child's outcome when it succeeded (`migrated`, `failed-over`, `dry-run`, …). */
  outcome: string | null;
  error: { type: string; message: string } | null;
  needsOperator: boolean;
  repair: string | null;
}

export interface NodeOperationResult {
  operation: NodeOperationKind;
  node: string;
  dryRun: boolean;
  limits: EvacuationLimits;
  instances: NodeInstanceResult[];
  /** Instances that did not end `done`. */
  errors: number;
  feedback: string[];
}

/** The effective limits: the cluster's defaults with the call's overrides. */
export function effectiveLimits(snap: ClusterSnapshot, overrides: LimitOverrides): EvacuationLimits {
  // Histories and configurations from before the setting existed have no evacuation defaults.
  const e = snap.cluster.evacuation ?? {};
  const out: EvacuationLimits = {
    maxConcurrent: e.maxConcurrent ?? EVACUATION_DEFAULTS.maxConcurrent,
    maxOutgoing: e.maxOutgoing ?? EVACUATION_DEFAULTS.maxOutgoing,
    maxIncoming: e.maxIncoming ?? EVACUATION_DEFAULTS.maxIncoming,
  };
  for (const k of ['maxConcurrent', 'maxOutgoing', 'maxIncoming'] as const) {
    const v = overrides[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** The instances whose primary is `node`, in name order (Ganeti's NiceSort, reduced). */
export function primaryInstances(snap: ClusterSnapshot, node: string): Instance[] {
  return Object.values(snap.instances)
    .filter((i) => i.primaryNode === node)
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/**
 * The target an instance's operation will use when it is known before it starts: the DRBD secondary,
 * or the explicit target of an externally mirrored one. `allocator` for an externally mirrored
 * instance the parent places; null when the instance cannot move (its child will say why).
 */
export function knownTarget(inst: Instance, targetNode: string | undefined): string | 'allocator' | null {
  const kind = mirrorKind(inst);
  if (kind === 'internal') return secondaryNodes(inst)[0] ?? null;
  if (kind === 'external') return targetNode ?? 'allocator';
  return null;
}

/** An instance operation that runs now, for the limits. */
export interface Slot {
  source: string;
  target: string | null;
}

/** Whether an operation from `source` to `target` may start next to `running` under `limits`. */
export function fitsLimits(limits: EvacuationLimits, running: readonly Slot[], source: string, target: string | null): boolean {
  if (running.length >= limits.maxConcurrent) return false;
  if (running.filter((r) => r.source === source).length >= limits.maxOutgoing) return false;
  if (target !== null && running.filter((r) => r.target === target).length >= limits.maxIncoming) return false;
  return true;
}

/** A candidate target for the parent's placement: its free memory as measured now. */
export interface PlacementCandidate {
  node: string;
  /** node_info's free memory minus every reservation and the not-yet-reserved memory of our own children. */
  free: number;
}

/**
 * The built-in allocator's choice for an externally mirrored instance, limited to targets with an
 * incoming slot: the most free memory that fits `required` (ties by name). Null when none fits.
 */
export function placeInstance(
  candidates: readonly PlacementCandidate[],
  required: number,
  hasIncomingSlot: (node: string) => boolean,
): string | null {
  const fit = candidates
    .filter((c) => c.free >= required && hasIncomingSlot(c.node))
    .sort((a, b) => b.free - a.free || a.node.localeCompare(b.node));
  return fit[0]?.node ?? null;
}

const MODE_TEXT = (req: NodeMigrateRequest): string =>
  req.mode ?? (req.live === undefined ? 'default mode' : req.live ? 'live' : 'non-live');

/** The Web UI's one-line summary, e.g. "Migrate 12 instances off node3, live, ≤2 at a time". */
export function nodeOperationSummary(
  kind: NodeOperationKind,
  req: NodeMigrateRequest | NodeFailoverRequest,
  count: number | null,
  limits: EvacuationLimits | null,
): string {
  const what = count === null ? 'the instances' : `${count} instance${count === 1 ? '' : 's'}`;
  const verb = kind === 'node-migrate' ? 'Migrate' : 'Fail over';
  const extra =
    kind === 'node-migrate'
      ? `, ${MODE_TEXT(req as NodeMigrateRequest)}`
      : (req as NodeFailoverRequest).ignoreConsistency
        ? ', ignoring consistency'
        : '';
  const atOnce = limits ? `, ≤${Math.min(limits.maxConcurrent, limits.maxOutgoing)} at a time` : '';
  return `${verb} ${what} off ${req.node}${extra}${atOnce}${req.drain ? ', draining it' : ''}${req.dryRun ? ' (dry run)' : ''}`;
}
