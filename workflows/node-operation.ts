/**
 * A node operation's state and what the operator sees of it: the feedback log, one entry per
 * instance (the Web UI checklist, the `progress` query), the `abort` update, the search attributes.
 * Entries are replaced, never edited in place, so a query result never changes after it was returned.
 */
import { log, setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import { isFinal, type InstanceState, type NodeInstanceResult, type NodeOperationKind } from '../domain/node-plan.js';
import { reasonRequestProblem } from '../domain/input-check.js';
import type { EvacuationLimits } from '../domain/types.js';
import {
  feedbackQuery,
  nodeAbortUpdate,
  nodeProgressQuery,
  SA,
  type AbortRequest,
  type NodeAbortAccepted,
  type NodePhase,
  type NodeProgressView,
  type StepState,
} from './messages.js';

const TAIL = 8;
const MARK: Record<InstanceState, string> = {
  waiting: '○',
  busy: '⏸',
  running: '▶',
  done: '✔',
  failed: '✖',
  aborted: '↩',
  skipped: '–',
  'not-started': '–',
};
const STEP_STATE: Record<InstanceState, StepState> = {
  waiting: 'pending',
  busy: 'pending',
  running: 'running',
  done: 'done',
  failed: 'failed',
  aborted: 'compensated',
  skipped: 'skipped',
  'not-started': 'skipped',
};

export class NodeOperation {
  readonly #feedback: string[] = [];
  #entries: readonly NodeInstanceResult[] = [];
  #phase: NodePhase = 'starting';
  #limits: EvacuationLimits | null = null;
  #title: string;
  #abort: { reason: string } | null = null;
  #stopped = false;
  #needsOperator = false;
  /** Bumped on every change the scheduler waits for (a child ended, an abort, a retry is due). */
  wake = 0;

  constructor(
    readonly kind: NodeOperationKind,
    readonly node: string,
  ) {
    this.#title = `${kind === 'node-migrate' ? 'Migrate' : 'Fail over'} the instances off ${node}`;
    setHandler(feedbackQuery, () => [...this.#feedback], { description: 'The operator feedback lines so far' });
    setHandler(nodeProgressQuery, () => this.view(), { description: 'Per instance: state, target, outcome; the counts' });
    setHandler(nodeAbortUpdate, (req: AbortRequest) => this.acceptAbort(req), {
      validator: (req: AbortRequest) => this.validateAbort(req),
      description: 'Start no further instance, and abort the running ones that have not passed their point of no return',
    });
    this.render();
  }

  // ---- read access ----------------------------------------------------------------------------

  get feedback(): string[] {
    return [...this.#feedback];
  }
  get entries(): readonly NodeInstanceResult[] {
    return this.#entries;
  }
  entry(instance: string): NodeInstanceResult {
    const e = this.#entries.find((x) => x.instance === instance);
    if (!e) throw new Error(`no entry for ${instance}`);
    return e;
  }
  get abort(): { reason: string } | null {
    return this.#abort;
  }
  /** No new instance starts (an abort, or a failure with stop-on-failure). */
  get stopStarting(): boolean {
    return this.#abort !== null || this.#stopped;
  }
  get needsOperator(): boolean {
    return this.#needsOperator;
  }
  get allFinal(): boolean {
    return this.#entries.every((e) => isFinal(e.state));
  }
  /** Instances that did not end `done`. */
  get errors(): number {
    return this.#entries.filter((e) => e.state !== 'done').length;
  }

  view(): NodeProgressView {
    const n = (...states: InstanceState[]) => this.#entries.filter((e) => states.includes(e.state)).length;
    const total = this.#entries.length;
    const finished = this.#entries.filter((e) => isFinal(e.state)).length;
    return {
      operation: this.kind,
      node: this.node,
      phase: this.#phase,
      percent: total ? Math.round((100 * finished) / total) : 100,
      counts: {
        done: n('done'),
        running: n('running'),
        waiting: n('waiting', 'busy'),
        failed: n('failed', 'aborted'),
        total,
      },
      limits: this.#limits,
      instances: [...this.#entries],
      steps: this.#entries.map((e) => ({ key: e.instance, label: label(e), state: STEP_STATE[e.state] })),
      feedbackTail: this.#feedback.slice(-TAIL),
      feedback: this.feedback,
      pointOfNoReturn: false,
      abortRequested: this.#abort !== null,
      needsOperator: this.#needsOperator,
      repair: this.#needsOperator ? 'see the instances that need an operator (job info instance/<name>)' : null,
    };
  }

  // ---- changes --------------------------------------------------------------------------------

  fb(line: string): void {
    this.#feedback.push(line);
    log.info(line, { node: this.node });
    this.render();
  }

  begin(entries: NodeInstanceResult[], limits: EvacuationLimits, title: string): void {
    this.#entries = entries;
    this.#limits = limits;
    this.#title = title;
    this.setPhase(this.#abort ? 'aborting' : 'running');
  }

  /** Replaces the instance's entry with `change` applied. */
  update(instance: string, change: Partial<NodeInstanceResult>): void {
    this.#entries = this.#entries.map((e) => (e.instance === instance ? { ...e, ...change } : e));
    if (change.needsOperator && !this.#needsOperator) {
      this.#needsOperator = true;
      upsertSearchAttributes([{ key: SA.needsOperator, value: true }]);
    }
    this.wake++;
    this.render();
  }

  /** Stop starting instances after a failure (`stopOnFailure`). */
  stop(reason: string): void {
    if (this.stopStarting) return;
    this.#stopped = true;
    this.fb(reason);
    this.setPhase('stopping');
    this.wake++;
  }

  finish(phase: 'done' | 'failed' | 'aborted' | 'cancelled'): void {
    this.setPhase(phase);
  }

  private setPhase(phase: NodePhase): void {
    if (phase !== this.#phase) {
      this.#phase = phase;
      upsertSearchAttributes([{ key: SA.phase, value: phase }]);
    }
    this.render();
  }

  // ---- abort ----------------------------------------------------------------------------------

  private validateAbort(req: AbortRequest): void {
    const problem = reasonRequestProblem(req ?? {});
    if (problem) throw new Error(`invalid abort request: ${problem}`);
    if (['done', 'failed', 'aborted', 'cancelled'].includes(this.#phase)) {
      throw new Error(`the operation on node ${this.node} has already finished (${this.#phase})`);
    }
    if (this.#abort) throw new Error('an abort was already accepted');
  }

  private acceptAbort(req: AbortRequest): NodeAbortAccepted {
    this.#abort = { reason: req.reason ?? '' };
    const running = this.#entries.filter((e) => e.state === 'running').length;
    const waiting = this.#entries.filter((e) => e.state === 'waiting' || e.state === 'busy').length;
    this.fb(
      `Abort requested by the operator${req.reason ? ` (${req.reason})` : ''}: ${waiting} instance(s) not started, ` +
        `${running} running asked to abort (those past their point of no return finish)`,
    );
    if (this.#phase !== 'starting') this.setPhase('aborting');
    this.wake++;
    return { accepted: true, phase: this.#phase, message: `aborting: ${this.#title}` };
  }

  // ---- the Web UI's current details -----------------------------------------------------------

  private render(): void {
    const v = this.view();
    const c = v.counts;
    const lines = [
      `### ${this.#title}`,
      '',
      `**Phase:** ${this.#phase} — ${c.done} done, ${c.running} running, ${c.waiting} waiting, ${c.failed} failed of ${c.total}`,
      ...(this.#limits
        ? [
            '',
            `**Limits:** ${this.#limits.maxConcurrent} at once, ${this.#limits.maxOutgoing} per source, ${this.#limits.maxIncoming} per target`,
          ]
        : []),
      ...(this.#needsOperator ? ['', `**Needs an operator:** ${v.repair}`] : []),
      '',
      ...this.#entries.map((e) => `- ${MARK[e.state]} ${e.state === 'running' ? `**${label(e)}**` : label(e)}`),
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

function label(e: NodeInstanceResult): string {
  const to = e.targetNode ? ` → ${e.targetNode}` : '';
  const how = e.state === 'done' ? (e.outcome ?? 'done') : e.state === 'failed' && e.error ? `failed: ${e.error.message}` : e.state;
  return `${e.instance}: ${e.sourceNode}${to} (${how})${e.needsOperator ? ' — needs an operator' : ''}`;
}
