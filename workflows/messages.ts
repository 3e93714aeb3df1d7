/**
 * Workflow messages and search attributes, defined once and imported by workflows, workers and
 * clients. Wire names are the identifiers without their suffix.
 */
import type { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { Phase, StepKey } from '../domain/plan.js';

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
