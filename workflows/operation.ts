/**
 * Per-operation workflow state and what the operator sees of it: the feedback log, the step
 * checklist (the Web UI's current details, the `GanetiPhase` search attribute, the `progress`
 * query), the point of no return and the `abort` update, and the failures an operation ends with.
 */
import {
  ApplicationFailure,
  type CancellationScope,
  CancelledFailure,
  patched,
  log,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { OpFailure, type OpError } from '../domain/errors.js';
import { reasonRequestProblem } from '../domain/input-check.js';
import type { Phase, PlanStep, StepKey } from '../domain/plan.js';
import { ForceComplete } from './force-complete.js';
import {
  abortUpdate,
  feedbackQuery,
  progressQuery,
  SA,
  type AbortAccepted,
  type AbortRequest,
  type OperationKind,
  type PolicyView,
  type ProgressView,
  type StepState,
  type StepView,
} from './messages.js';

const TAIL = 8;
/** The patch that makes every accepted abort take effect (docs/versioning.md). */
const ABORT_TAKES_EFFECT = 'abort-takes-effect';
/** Plain symbols (no emoji: they render with the fonts of any browser). */
const MARK: Record<StepState, string> = {
  pending: '○',
  running: '▶',
  done: '✔',
  failed: '✖',
  compensated: '↩',
  skipped: '–',
};

const VERBS: Record<OperationKind, string> = {
  migrate: 'Migrate',
  failover: 'Failover',
  cleanup: 'Cleanup of',
  start: 'Start',
  shutdown: 'Shutdown of',
};
const verbOf = (kind: OperationKind): string => VERBS[kind];

/**
 * One operation's state. Everything is changed through the methods below (each re-renders the Web
 * UI details); the fields are readable only. Step views are replaced, never edited in place, so a
 * query result never changes after it was returned.
 */
export class Operation {
  readonly #feedback: string[] = [];
  #kind: OperationKind;
  #phase: Phase = 'prerequisites';
  #sourceNode: string | null = null;
  #targetNode: string | null = null;
  #title: string;
  #steps: readonly StepView[] = [
    { key: 'prerequisites', label: 'Check prerequisites', state: 'running' },
    { key: 'pre-hooks', label: 'Run pre-hooks', state: 'pending' },
  ];
  /** After it, the operation only rolls forward: abort is refused. */
  #pointOfNoReturn = false;
  /** Why an abort is refused once past the point of no return. */
  #ponrReason = '';
  #abort: Readonly<AbortRequest & { phase: Phase }> | null = null;
  /** What an accepted abort ended with (set by the execution path that handled it). */
  #abortOutcome: string | null = null;
  #needsOperator = false;
  #repair: string | null = null;
  /** The scope an accepted abort cancels (the operation's execution). */
  #scope: CancellationScope | null = null;
  #finished = false;
  #policy: PolicyView | null = null;
  /** The `forceComplete` update (a migration's memory transfer offers itself to it). */
  readonly force: ForceComplete;

  constructor(
    kind: OperationKind,
    readonly instance: string,
  ) {
    this.#kind = kind;
    this.#title = `${verbOf(kind)} ${instance}`;
    setHandler(feedbackQuery, () => this.feedback, { description: 'The operator feedback lines so far' });
    setHandler(progressQuery, () => this.view(), { description: 'Phase, step checklist, percent done, feedback tail' });
    setHandler(abortUpdate, (req: AbortRequest) => this.acceptAbort(req), {
      validator: (req: AbortRequest) => this.validateAbort(req),
      description: 'Abort before the point of no return (abort + revert run); refused after it',
    });
    this.force = new ForceComplete({ instance, fb: (l) => this.fb(l), refusal: () => this.forceRefusal() });
    this.render();
  }

  view(): ProgressView {
    const counted = this.#steps.filter((s) => s.state !== 'skipped');
    const finished = counted.filter((s) => s.state !== 'pending' && s.state !== 'running').length;
    return {
      operation: this.#kind,
      instance: this.instance,
      sourceNode: this.#sourceNode,
      targetNode: this.#targetNode,
      phase: this.#phase,
      percent: counted.length ? Math.round((100 * finished) / counted.length) : 0,
      steps: [...this.#steps],
      feedbackTail: this.#feedback.slice(-TAIL),
      feedback: this.feedback,
      pointOfNoReturn: this.#pointOfNoReturn,
      abortRequested: this.#abort !== null,
      needsOperator: this.#needsOperator,
      repair: this.#repair,
      migrationPolicy: this.#policy,
      forceComplete: this.force?.requested?.action ?? null,
    };
  }

  /** The migration's resolved policy, shown in the job's details and progress. */
  setPolicy(policy: PolicyView): void {
    this.#policy = policy;
    this.fb(policy.line);
  }

  private forceRefusal(): string | null {
    if (this.#finished) return `the operation on ${this.instance} has already finished (${this.#phase})`;
    if (this.#abort) return `an abort was accepted during ${this.#abort.phase}`;
    if (this.#pointOfNoReturn) return `${this.#ponrReason}: past the point of no return, nothing left to force`;
    return null;
  }

  // ---- read access ----------------------------------------------------------------------------

  get kind(): OperationKind {
    return this.#kind;
  }
  get title(): string {
    return this.#title;
  }
  /** The feedback lines so far (a copy). */
  get feedback(): string[] {
    return [...this.#feedback];
  }
  /** The accepted abort, if any, with the phase it was accepted in. */
  get abort(): Readonly<AbortRequest & { phase: Phase }> | null {
    return this.#abort;
  }
  /** What the execution path that handled an accepted abort left behind. */
  get abortOutcome(): string | null {
    return this.#abortOutcome;
  }
  get needsOperator(): boolean {
    return this.#needsOperator;
  }
  get repair(): string | null {
    return this.#repair;
  }

  // ---- feedback -------------------------------------------------------------------------------

  /** A feedback line, as Ganeti's feedback_fn / LogInfo / LogWarning would print it. */
  fb(line: string): void {
    this.#feedback.push(line);
    log.info(line, { instance: this.instance });
    this.render();
  }

  warn(msg: string): void {
    this.fb(` - WARNING: ${msg}`);
  }

  // ---- steps ----------------------------------------------------------------------------------

  /** Once the prerequisites decided the operation: its nodes and the steps it will run. */
  plan(kind: OperationKind, source: string, target: string, steps: PlanStep[], mode: string | null): void {
    this.#kind = kind;
    this.#sourceNode = source;
    this.#targetNode = target;
    // Start and shutdown run on one node (the primary): "Start web1 on node1".
    const where = source === target ? ` on ${source}` : `: ${source} → ${target}`;
    this.#title = `${verbOf(kind)} ${this.instance}${where}${mode ? `, ${mode}` : ''}`;
    const pre = this.#steps.filter((s) => s.key === 'prerequisites' || s.key === 'pre-hooks');
    this.#steps = [
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

  /** Replaces each step view by `next(step, index)` (a new array of new views: nothing is edited in place). */
  private restate(next: (s: StepView, i: number) => StepState): void {
    this.#steps = this.#steps.map((s, i) => {
      const state = next(s, i);
      return state === s.state ? s : { ...s, state };
    });
  }

  /** Marks `key` running (and the running one done); steps passed over count as skipped. */
  step(key: StepKey): void {
    const at = this.#steps.findIndex((s) => s.key === key);
    this.restate((s, i) => {
      if (i === at) return 'running';
      if (s.state === 'running') return 'done';
      if (i < at && s.state === 'pending') return 'skipped';
      return s.state;
    });
    this.setPhase(key);
  }

  /** The end: the running step gets `state`, pending ones are skipped. */
  finish(phase: 'done' | 'failed' | 'cancelled' | 'aborted'): void {
    const runningState: StepState = phase === 'done' ? 'done' : 'failed';
    this.restate((s) => (s.state === 'running' ? runningState : s.state === 'pending' ? 'skipped' : s.state));
    this.#finished = true;
    this.setPhase(phase);
  }

  /** A compensation starts: the interrupted step failed; the phase says what runs now. */
  beginCompensation(phase: 'aborting' | 'reverting'): void {
    this.restate((s) => (s.state === 'running' ? 'failed' : s.state));
    this.setPhase(phase);
  }

  /** Steps undone by a compensation. */
  compensated(keys: StepKey[]): void {
    this.restate((s) => (keys.includes(s.key) && (s.state === 'done' || s.state === 'running') ? 'compensated' : s.state));
    this.render();
  }

  private setPhase(phase: Phase): void {
    if (phase !== this.#phase) {
      this.#phase = phase;
      upsertSearchAttributes([{ key: SA.phase, value: phase }]);
    }
    this.render();
  }

  // ---- point of no return and abort -----------------------------------------------------------

  passPointOfNoReturn(reason: string): void {
    this.#pointOfNoReturn = true;
    this.#ponrReason = reason;
    this.render();
  }

  /**
   * The scope an accepted abort cancels: the operation's execution up to its point of no return. An
   * abort accepted before the scope existed (during the first activity) takes effect now.
   */
  attachScope(scope: CancellationScope): void {
    this.#scope = scope;
    if (this.#abort && patched(ABORT_TAKES_EFFECT)) scope.cancel();
  }

  /**
   * Before a point of no return: an accepted abort that no cancellable activity noticed (none ran
   * since it was accepted) ends the operation here, before anything changes.
   */
  abortIfRequested(): void {
    if (this.#abort && patched(ABORT_TAKES_EFFECT)) throw new CancelledFailure(`aborted by the operator during ${this.#abort.phase}`);
  }

  /** The execution path that handled an accepted abort says what it left behind. */
  abortEnded(outcome: string): void {
    this.#abortOutcome = outcome;
  }

  private validateAbort(req: AbortRequest): void {
    const problem = reasonRequestProblem(req ?? {});
    if (problem) throw new Error(`invalid abort request: ${problem}`);
    if (this.#finished) throw new Error(`the operation on ${this.instance} has already finished (${this.#phase})`);
    if (this.#abort) throw new Error(`an abort was already accepted during ${this.#abort.phase}`);
    if (this.#pointOfNoReturn) throw new Error(`${this.#ponrReason}: past the point of no return, the operation rolls forward`);
  }

  private acceptAbort(req: AbortRequest): AbortAccepted {
    this.#abort = { ...req, phase: this.#phase };
    this.fb(`Abort requested by the operator during ${this.#phase}${req.reason ? ` (${req.reason})` : ''}`);
    this.#scope?.cancel();
    return { accepted: true, phase: this.#phase, message: `aborting ${this.#title} during ${this.#phase}` };
  }

  // ---- needs operator -------------------------------------------------------------------------

  needsHuman(repair: string): void {
    if (!this.#needsOperator) upsertSearchAttributes([{ key: SA.needsOperator, value: true }]);
    this.#needsOperator = true;
    this.#repair = repair;
    this.render();
  }

  // ---- the Web UI's current details -----------------------------------------------------------

  private render(): void {
    const v = this.view();
    const lines = [
      `### ${this.#title}`,
      '',
      `**Phase:** ${this.#phase} — ${v.percent}% of the steps done${this.#pointOfNoReturn ? ' — past the point of no return' : ''}`,
      ...(this.#needsOperator ? ['', `**Needs an operator:** ${this.#repair}`] : []),
      ...(this.#policy ? ['', `**Migration policy:** ${this.#policy.line.replace(/^\* migration policy: /, '')}`] : []),
      '',
      ...this.#steps.map((s) => `- ${MARK[s.state]} ${s.state === 'running' ? `**${s.label}**` : s.label}`),
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
