/**
 * Workflow messages and search attributes, defined once and imported by workflows, workers and
 * clients. Wire names are the identifiers without their suffix.
 */
import type { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { NodeInstanceResult, NodeOperationKind } from '../domain/node-plan.js';
import type { Phase, StepKey } from '../domain/plan.js';
import type { ResolvedMigrationPolicy } from '../domain/policy-rules.js';
import type { EvacuationLimits } from '../domain/types.js';

export type OperationKind = 'migrate' | 'failover' | 'cleanup' | 'start' | 'shutdown';

export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'compensated' | 'skipped';

export interface StepView {
  key: StepKey;
  label: string;
  state: StepState;
}

export interface ProgressView {
  operation: OperationKind;
  instance: string;
  /** Start and shutdown: both name the primary node. */
  sourceNode: string | null;
  targetNode: string | null;
  /** The step running now (e.g. `accept`, `memory-transfer`, `sync`), or `done` / `failed` / `aborted`. */
  phase: Phase;
  /** Steps finished, in percent of all steps (live resync/transfer progress is in the heartbeat details). */
  percent: number;
  steps: StepView[];
  /** The last feedback lines. */
  feedbackTail: string[];
  /** Every feedback line so far. */
  feedback: string[];
  /** The hypervisor reported the transfer complete (or the failover shut the instance down): no abort any more. */
  pointOfNoReturn: boolean;
  abortRequested: boolean;
  /** Set when the operation ended in a state a human must repair; `repair` says how. */
  needsOperator: boolean;
  repair: string | null;
  /** A migration's policy once resolved (absent in other operations, and before the prerequisites). */
  migrationPolicy?: PolicyView | null;
  /** What an accepted force-complete does (`postcopy`, `pause-source`), once requested. */
  forceComplete?: 'postcopy' | 'pause-source' | null;
}

/** The chosen migration policy as the job shows it. */
export interface PolicyView extends ResolvedMigrationPolicy {
  /** The completion timeout of this transfer, seconds (0: none). */
  completionTimeoutSec: number;
  /** The feedback line that shows it. */
  line: string;
}

export interface AbortRequest {
  reason?: string;
}

export interface AbortAccepted {
  accepted: true;
  /** The step that was running when the abort was accepted. */
  phase: Phase;
  message: string;
}

/** The operator feedback lines (Ganeti's `* …` lines) recorded so far. */
export const feedbackQuery = defineQuery<string[]>('feedback');
/** Operation, nodes, phase, step checklist and feedback. */
export const progressQuery = defineQuery<ProgressView>('progress');
/**
 * Abort the operation: accepted before the point of no return (then abort + revert run, as for a
 * failure); refused after it, with the reason, and the operation rolls forward.
 */
export const abortUpdate = defineUpdate<AbortAccepted, [AbortRequest]>('abort');

export interface ForceCompleteRequest {
  reason?: string;
}

export interface ForceCompleteAccepted {
  accepted: true;
  /** `postcopy` when the policy allows post-copy, else `pause-source` (a non-live finish). */
  action: 'postcopy' | 'pause-source';
  message: string;
}

/**
 * Force the memory transfer to complete: accepted only while it runs; switches to post-copy when the
 * migration's policy allows it (the point of no return), otherwise pauses the guest on the source.
 * Refused with the reason otherwise.
 */
export const forceCompleteUpdate = defineUpdate<ForceCompleteAccepted, [ForceCompleteRequest]>('forceComplete');

/** `defineSearchAttributeKey` of @temporalio/common, which workflow code does not import (a key is plain data). */
const key = <T extends SearchAttributeType>(name: string, type: T): ReturnType<typeof defineSearchAttributeKey<T>> => ({ name, type });

export const SA = {
  instance: key('GanetiInstance', 'KEYWORD'),
  operation: key('GanetiOperation', 'KEYWORD'),
  sourceNode: key('GanetiSourceNode', 'KEYWORD'),
  targetNode: key('GanetiTargetNode', 'KEYWORD'),
  phase: key('GanetiPhase', 'KEYWORD'),
  needsOperator: key('GanetiNeedsOperator', 'BOOL'),
} as const;

export const SEARCH_ATTRIBUTES = Object.values(SA);

/** A node operation's view (`progress` query of `node/<node>`): per instance, and the counts. */
export interface NodeProgressView {
  operation: NodeOperationKind;
  node: string;
  /** `running`, `aborting` or `stopping` (no new instance starts), then `done`, `failed`, `aborted`, `cancelled`. */
  phase: NodePhase;
  /** Instances finished, in percent of all. */
  percent: number;
  counts: { done: number; running: number; waiting: number; failed: number; total: number };
  limits: EvacuationLimits | null;
  instances: NodeInstanceResult[];
  /** The instances as a checklist (the shape of an instance operation's steps). */
  steps: Array<{ key: string; label: string; state: StepState }>;
  feedbackTail: string[];
  feedback: string[];
  /** A node operation has no point of no return of its own (each child has its own). */
  pointOfNoReturn: false;
  abortRequested: boolean;
  needsOperator: boolean;
  repair: string | null;
}

export type NodePhase = 'starting' | 'running' | 'aborting' | 'stopping' | 'done' | 'failed' | 'aborted' | 'cancelled';

/** The node operation's `progress` query (same name as the instance operations'; another shape). */
export const nodeProgressQuery = defineQuery<NodeProgressView>('progress');

/** The node operation's `abort`: no new instance starts; running ones are asked to abort. */
export const nodeAbortUpdate = defineUpdate<NodeAbortAccepted, [AbortRequest]>('abort');

export interface NodeAbortAccepted {
  accepted: true;
  phase: NodePhase;
  message: string;
}
