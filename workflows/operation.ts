/**
 * Per-operation workflow state: the feedback log (readable by query while running), the phase (a
 * search attribute), and the failures an operation ends with.
 */
import { ApplicationFailure } from '@temporalio/common';
import { log, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import { OpFailure, type OpError } from '../cluster/errors.js';
import { feedbackQuery, progressQuery, SA, type OperationKind, type ProgressView } from './messages.js';

export class Operation {
  readonly feedback: string[] = [];
  phase = 'prerequisites';
  sourceNode: string | null = null;
  targetNode: string | null = null;

  constructor(
    public kind: OperationKind,
    readonly instance: string,
  ) {
    setHandler(feedbackQuery, () => this.feedback);
    setHandler(progressQuery, (): ProgressView => ({
      operation: this.kind,
      instance: this.instance,
      sourceNode: this.sourceNode,
      targetNode: this.targetNode,
      phase: this.phase,
      feedback: this.feedback,
    }));
  }

  /** A feedback line, as Ganeti's feedback_fn / LogInfo / LogWarning would print it. */
  fb(line: string): void {
    this.feedback.push(line);
    log.info(line, { instance: this.instance });
  }

  warn(msg: string): void {
    this.fb(` - WARNING: ${msg}`);
  }

  setPhase(phase: string): void {
    if (phase === this.phase) return;
    this.phase = phase;
    upsertSearchAttributes([{ key: SA.phase, value: phase }]);
  }

  setNodes(kind: OperationKind, source: string, target: string): void {
    this.kind = kind;
    this.sourceNode = source;
    this.targetNode = target;
    upsertSearchAttributes([
      { key: SA.operation, value: kind },
      { key: SA.sourceNode, value: source },
      { key: SA.targetNode, value: target },
    ]);
  }
}

/** Details carried by every operation failure. */
export interface OpFailureDetails {
  code?: string;
  feedback: string[];
}

export function opFailure(err: OpError, feedback: string[] = []): ApplicationFailure {
  const details: OpFailureDetails = { feedback };
  if (err.code) details.code = err.code;
  return ApplicationFailure.create({ type: err.type, message: err.message, nonRetryable: true, details: [details] });
}

export const execFailure = (message: string): ApplicationFailure =>
  ApplicationFailure.create({ type: OpFailure.ExecutionFailed, message, nonRetryable: true });

export const isExecFailure = (e: unknown): e is ApplicationFailure =>
  e instanceof ApplicationFailure && e.type === OpFailure.ExecutionFailed;

/** Re-raises an operation failure with the feedback attached (what the CLI prints on failure). */
export function withFeedback(e: unknown, feedback: string[]): unknown {
  if (e instanceof ApplicationFailure && (Object.values(OpFailure) as string[]).includes(e.type ?? '')) {
    const prev = (e.details?.[0] ?? {}) as Partial<OpFailureDetails>;
    const details: OpFailureDetails = { ...prev, feedback: [...feedback] };
    return ApplicationFailure.create({ type: e.type ?? OpFailure.ExecutionFailed, message: e.message, nonRetryable: true, details: [details] });
  }
  return e;
}
