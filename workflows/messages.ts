/**
 * Workflow messages and search attributes, defined once and imported by workflows, workers and
 * clients. Wire names are the identifiers without their suffix.
 */
import { defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery } from '@temporalio/workflow';

export type OperationKind = 'migrate' | 'failover' | 'cleanup';

export interface ProgressView {
  operation: OperationKind;
  instance: string;
  sourceNode: string | null;
  targetNode: string | null;
  /** The step running now (e.g. `accept`, `memory-transfer`, `wait-sync`), or `done` / `failed`. */
  phase: string;
  /** Every feedback line so far. */
  feedback: string[];
}

/** The operator feedback lines (Ganeti's `* …` lines) recorded so far. */
export const feedbackQuery = defineQuery<string[]>('feedback');
/** Operation, nodes, phase and feedback. */
export const progressQuery = defineQuery<ProgressView>('progress');

export const SA = {
  instance: defineSearchAttributeKey('GanetiInstance', 'KEYWORD'),
  operation: defineSearchAttributeKey('GanetiOperation', 'KEYWORD'),
  sourceNode: defineSearchAttributeKey('GanetiSourceNode', 'KEYWORD'),
  targetNode: defineSearchAttributeKey('GanetiTargetNode', 'KEYWORD'),
  phase: defineSearchAttributeKey('GanetiPhase', 'KEYWORD'),
  needsOperator: defineSearchAttributeKey('GanetiNeedsOperator', 'BOOL'),
} as const;

export const SEARCH_ATTRIBUTES = Object.values(SA);
