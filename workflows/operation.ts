/**
 * Per-operation workflow state and what the operator sees of it: the feedback log, the step
 * checklist (the Web UI's current details, the `GanetiPhase` search attribute, the `progress`
 * query), the point of no return and the `abort` update, and the failures an operation ends with.
 */
import {
  ApplicationFailure,
  type CancellationScope,
  log,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { OpFailure, type OpError } from '../domain/errors.js';
import type { PlanStep } from '../domain/plan.js';
import {
  abortUpdate,
  feedbackQuery,
  progressQuery,
  SA,
  type AbortAccepted,
  type AbortRequest,
  type OperationKind,
  type ProgressView,
  type StepState,
  type StepView,
} from './messages.js';

const TAIL = 8;
/** Plain symbols (no emoji: they render with the fonts of any browser). */
const MARK: Record<StepState, string> = {
  pending: '○',
  running: '▶',
  done: '✔',
  failed: '✖',
  compensated: '↩',
  skipped: '–',
};

export class Operation {
  readonly feedback: string[] = [];
  phase = 'prerequisites';
  sourceNode: string | null = null;
  targetNode: string | null = null;
  title: string;
  steps: StepView[] = [
    { key: 'prerequisites', label: 'Check prerequisites', state: 'running' },
    { key: 'pre-hooks', label: 'Run pre-hooks', state: 'pending' },
  ];
  /** After it, the operation only rolls forward: abort is refused. */
  pointOfNoReturn = false;
  /** Why an abort is refused once past the point of no return. */
  private ponrReason = '';
  abort: (AbortRequest & { phase: string }) | null = null;
  /** What an accepted abort ended with (set by the execution path that handled it). */
  abortOutcome: string | null = null;
  needsOperator = false;
  repair: string | null = null;
  /** The scope an accepted abort cancels (the operation's execution). */
  scope: CancellationScope | null = null;
  finished = false;

  constructor(
    public kind: OperationKind,
    readonly instance: string,
  ) {
    this.title = `${kind === 'failover' ? 'Failover' : kind === 'cleanup' ? 'Cleanup of' : 'Migrate'} ${instance}`;
    setHandler(feedbackQuery, () => this.feedback, { description: 'The operator feedback lines so far' });
    setHandler(progressQuery, () => this.view(), { description: 'Phase, step checklist, percent done, feedback tail' });
    setHandler(abortUpdate, (req: AbortRequest) => this.acceptAbort(req), {
      validator: (req: AbortRequest) => this.validateAbort(req),
      description: 'Abort before the point of no return (abort + revert run); refused after it',
    });
    this.render();
  }

  view(): ProgressView {
    const counted = this.steps.filter((s) => s.state !== 'skipped');
    const finished = counted.filter((s) => s.state !== 'pending' && s.state !== 'running').length;
    return {
      operation: this.kind,
      instance: this.instance,
      sourceNode: this.sourceNode,
      targetNode: this.targetNode,
      phase: this.phase,
      percent: counted.length ? Math.round((100 * finished) / counted.length) : 0,
      steps: this.steps,
      feedbackTail: this.feedback.slice(-TAIL),
      feedback: this.feedback,
      pointOfNoReturn: this.pointOfNoReturn,
      abortRequested: this.abort !== null,
      needsOperator: this.needsOperator,
      repair: this.repair,
    };
  }

  // ---- feedback -------------------------------------------------------------------------------

  /** A feedback line, as Ganeti's feedback_fn / LogInfo / LogWarning would print it. */
  fb(line: string): void {
    this.feedback.push(line);
    log.info(line, { instance: this.instance });
    this.render();
  }

  warn(msg: string): void {
    this.fb(` - WARNING: ${msg}`);
  }

  // ---- steps ----------------------------------------------------------------------------------

  /** Once the prerequisites decided the operation: its nodes and the steps it will run. */
  plan(kind: OperationKind, source: string, target: string, steps: PlanStep[], mode: string | null): void {
    this.kind = kind;
    this.sourceNode = source;
    this.targetNode = target;
    const verb = kind === 'failover' ? 'Failover' : kind === 'cleanup' ? 'Cleanup of' : 'Migrate';
    this.title = `${verb} ${this.instance}: ${source} → ${target}${mode ? `, ${mode}` : ''}`;
    const pre = this.steps.filter((s) => s.key === 'prerequisites' || s.key === 'pre-hooks');
    this.steps = [
      ...pre,
      ...steps.map((s) => ({ ...s, state: 'pending' as StepState })),
      { key: 'post-hooks', label: 'Run post-hooks', state: 'pending' },
    ];
    upsertSearchAttributes([
      { key: SA.operation, value: kind },
      { key: SA.sourceNode, value: source },
      { key: SA.targetNode, value: target },
    ]);
    this.render();
  }

  /** Marks `key` running (and the running one done); steps passed over count as skipped. */
  step(key: string): void {
    const at = this.steps.findIndex((s) => s.key === key);
    for (let i = 0; i < this.steps.length; i++) {
      const s = this.steps[i]!;
      if (s.state === 'running' && i !== at) s.state = 'done';
      if (at >= 0 && i < at && s.state === 'pending') s.state = 'skipped';
    }
    if (at >= 0) this.steps[at]!.state = 'running';
    this.setPhase(key);
  }

  /** The end: the running step gets `state`, pending ones are skipped. */
  finish(phase: 'done' | 'failed' | 'cancelled' | 'aborted'): void {
    const runningState: StepState = phase === 'done' ? 'done' : 'failed';
    for (const s of this.steps) {
      if (s.state === 'running') s.state = runningState;
      else if (s.state === 'pending') s.state = 'skipped';
    }
    this.finished = true;
    this.setPhase(phase);
  }

  /** A compensation starts: the interrupted step failed; the phase says what runs now. */
  beginCompensation(phase: string): void {
    for (const s of this.steps) if (s.state === 'running') s.state = 'failed';
    this.setPhase(phase);
  }

  /** Steps undone by a compensation. */
  compensated(keys: string[]): void {
    for (const s of this.steps) if (keys.includes(s.key) && (s.state === 'done' || s.state === 'running')) s.state = 'compensated';
    this.render();
  }

  private setPhase(phase: string): void {
    if (phase !== this.phase) {
      this.phase = phase;
      upsertSearchAttributes([{ key: SA.phase, value: phase }]);
    }
    this.render();
  }

  // ---- point of no return and abort -----------------------------------------------------------

  passPointOfNoReturn(reason: string): void {
    this.pointOfNoReturn = true;
    this.ponrReason = reason;
    this.render();
  }

  private validateAbort(_req: AbortRequest): void {
    if (this.finished) throw new Error(`the operation on ${this.instance} has already finished (${this.phase})`);
    if (this.abort) throw new Error(`an abort was already accepted during ${this.abort.phase}`);
    if (this.pointOfNoReturn) throw new Error(`${this.ponrReason}: past the point of no return, the operation rolls forward`);
  }

  private acceptAbort(req: AbortRequest): AbortAccepted {
    this.abort = { ...req, phase: this.phase };
    this.fb(`Abort requested by the operator during ${this.phase}${req.reason ? ` (${req.reason})` : ''}`);
    this.scope?.cancel();
    return { accepted: true, phase: this.phase, message: `aborting ${this.title} during ${this.phase}` };
  }

  // ---- needs operator -------------------------------------------------------------------------

  needsHuman(repair: string): void {
    if (!this.needsOperator) upsertSearchAttributes([{ key: SA.needsOperator, value: true }]);
    this.needsOperator = true;
    this.repair = repair;
    this.render();
  }

  // ---- the Web UI's current details -----------------------------------------------------------

  private render(): void {
    const v = this.view();
    const lines = [
      `### ${this.title}`,
      '',
      `**Phase:** ${this.phase} — ${v.percent}% of the steps done${this.pointOfNoReturn ? ' — past the point of no return' : ''}`,
      ...(this.needsOperator ? ['', `**Needs an operator:** ${this.repair}`] : []),
      '',
      ...this.steps.map((s) => `- ${MARK[s.state]} ${s.state === 'running' ? `**${s.label}**` : s.label}`),
      '',
      '**Last feedback**',
      '',
      '```',
      ...(v.feedbackTail.length ? v.feedbackTail : ['(none yet)']),
      '```',
    ];
    setCurrentDetails(lines.join('\n'));
  }
}

/** Details carried by every operation failure. */
export interface OpFailureDetails {
  code?: string;
  feedback: string[];
  needsOperator?: boolean;
  repair?: string;
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

/** Re-raises an operation failure with the feedback (and needs-operator hints) attached. */
export function withFeedback(e: unknown, op: Operation): unknown {
  if (e instanceof ApplicationFailure && (Object.values(OpFailure) as string[]).includes(e.type ?? '')) {
    const prev = (e.details?.[0] ?? {}) as Partial<OpFailureDetails>;
    const details: OpFailureDetails = { ...prev, feedback: [...op.feedback] };
    if (op.needsOperator) {
      details.needsOperator = true;
      if (op.repair) details.repair = op.repair;
    }
    return ApplicationFailure.create({
      type: e.type ?? OpFailure.ExecutionFailed,
      message: e.message,
      nonRetryable: true,
      details: [details],
    });
  }
  return e;
}
