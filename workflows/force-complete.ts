/**
 * The `forceComplete` update (issue 14): accepted only while a memory transfer runs and offers it
 * (workflows/transfer.ts attaches itself for the duration of each wait), refused with the reason
 * otherwise. Accepting records the request and interrupts the wait; the transfer then switches to
 * post-copy or pauses the source.
 */
import { setHandler } from '@temporalio/workflow';
import { reasonRequestProblem } from '../domain/input-check.js';
import { forceCompleteUpdate, type ForceCompleteAccepted, type ForceCompleteRequest } from './messages.js';

/** A running transfer that can be forced. */
export interface ForceTarget {
  /** What forcing does now. */
  action: 'postcopy' | 'pause-source';
  /** Interrupts the transfer's wait. */
  trigger(): void;
}

/** What the update needs of its operation. */
export interface ForceHost {
  readonly instance: string;
  /** Why nothing can be forced now (finished, aborting, past the point of no return), or null. */
  refusal(): string | null;
  fb(line: string): void;
}

export class ForceComplete {
  #target: ForceTarget | null = null;
  #requested: (ForceCompleteRequest & { action: ForceTarget['action'] }) | null = null;

  constructor(private readonly host: ForceHost) {
    setHandler(forceCompleteUpdate, (req: ForceCompleteRequest) => this.accept(req), {
      validator: (req: ForceCompleteRequest) => this.validate(req),
      description: 'Force the running memory transfer to complete: post-copy if the policy allows it, else pause the source',
    });
  }

  /** The accepted request, if any. */
  get requested(): Readonly<ForceCompleteRequest & { action: ForceTarget['action'] }> | null {
    return this.#requested;
  }

  /** A transfer offers itself (null: it no longer can be forced). An accepted request not yet acted on triggers it at once. */
  offer(target: ForceTarget | null): void {
    this.#target = target;
  }

  private validate(req: ForceCompleteRequest): void {
    const problem = reasonRequestProblem(req ?? {});
    if (problem) throw new Error(`invalid force-complete request: ${problem}`);
    const refused = this.host.refusal();
    if (refused) throw new Error(refused);
    if (this.#requested) throw new Error(`a force-complete (${this.#requested.action}) was already accepted`);
    if (!this.#target) throw new Error(`force-complete is accepted only while the memory transfer of ${this.host.instance} runs`);
  }

  private accept(req: ForceCompleteRequest): ForceCompleteAccepted {
    const target = this.#target!;
    this.#requested = { ...req, action: target.action };
    const what = target.action === 'postcopy' ? 'switching to post-copy' : 'pausing the instance on the source (a non-live finish)';
    this.host.fb(`Force-complete requested by the operator: ${what}${req.reason ? ` (${req.reason})` : ''}`);
    target.trigger();
    return { accepted: true, action: target.action, message: `forcing the memory transfer of ${this.host.instance} to complete: ${what}` };
  }
}
