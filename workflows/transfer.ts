/**
 * M10 under a migration policy (issue 14; docs/behaviour.md §5.5 "Migration policies"): waits for
 * the memory transfer with the policy's completion and progress timeouts (enforced by the
 * heartbeating wait activity, not by workflow timers), applies the policy's `onTimeout` when one is
 * hit, and serves the `forceComplete` update. Post-copy is a point of no return: from the moment
 * `start-postcopy` is issued, the destination holds the only current state, abort is refused, and a
 * failure stops with an operator repair — the source is never resumed.
 */
import { CancellationScope, isCancellation, patched } from '@temporalio/workflow';
import type { MigrationTimeoutDetails, WaitForMigrationResult } from '../activities/hypervisor.js';
import { ActivityFailure } from '../domain/errors.js';
import { cleanupCommand } from '../domain/naming.js';
import { completionTimeoutSec, type MigrationPolicy } from '../domain/policy-rules.js';
import type { MigrationControl } from '../domain/ports.js';
import { ri, type Exec } from './exec.js';
import { execFailure } from './operation.js';
import type { RpcFailure } from './rpc.js';

/** The patch of every path a policy adds (timeouts acted on, force-complete); docs/versioning.md. */
export const POLICY_PATCH = 'migration-policy';

/** What the wait ended with. */
export type TransferOutcome =
  | { kind: 'completed'; lines: string[] }
  /** The wait failed (the caller probes and aborts, as before policies existed). */
  | { kind: 'failed'; failure: RpcFailure }
  /** The policy says abort (a timeout, or raise-downtime at its maximum): the caller aborts. */
  | { kind: 'abort'; message: string };

interface WaitOpts {
  completionTimeoutSec: number;
  progressTimeoutSec: number;
}

type WaitResult = { kind: 'ok'; payload: WaitForMigrationResult } | { kind: 'failed'; failure: RpcFailure } | { kind: 'forced' };

/** The downtime steps of `raise-downtime`: doubling from `from` up to `max` (the last step is `max`). */
export function downtimeSteps(from: number, max: number): number[] {
  const out: number[] = [];
  for (let d = from * 2; d < max; d *= 2) out.push(d);
  if (from < max) out.push(max);
  return out;
}

/** How long each raise-downtime step may take, seconds. */
export function stepTimeoutSec(completionSec: number, progressSec: number): number {
  return Math.max(2, completionSec > 0 ? Math.ceil(completionSec / 4) : progressSec);
}

export class PolicyTransfer {
  #scope: CancellationScope | null = null;
  #forceHandled = false;

  constructor(
    private readonly x: Exec,
    private readonly policy: MigrationPolicy,
    /** The downtime the transfer started with, ms. */
    private downtimeMs: number,
  ) {}

  /** Waits until the transfer completed, failed, or the policy says abort. */
  async run(): Promise<TransferOutcome> {
    const { x, policy } = this;
    const total = completionTimeoutSec(policy, x.inst.beparams.maxmem);
    let opts: WaitOpts = { completionTimeoutSec: total, progressTimeoutSec: policy.progressTimeoutSec };
    let steps: number[] | null = null;
    x.op.force.offer({
      action: policy.postcopy ? 'postcopy' : 'pause-source',
      trigger: () => this.#scope?.cancel(),
    });
    try {
      for (;;) {
        if (x.op.force.requested && !this.#forceHandled) {
          this.#forceHandled = true;
          patched(POLICY_PATCH);
          if (x.op.force.requested.action === 'postcopy') return await this.postcopy('the operator forced it to complete');
          const paused = await this.control({ action: 'pause-source' }, 'pause the source (force-complete)');
          if (paused) return { kind: 'abort', message: paused };
          x.op.fb(`* paused ${x.inst.name} on ${x.source}: the memory transfer finishes non-live`);
          opts = { completionTimeoutSec: 0, progressTimeoutSec: 0 };
        }
        const r = await this.wait(opts);
        if (r.kind === 'forced') continue;
        if (r.kind === 'ok') return { kind: 'completed', lines: r.payload.lines };
        if (r.failure.type !== ActivityFailure.MigrationTimedOut) return { kind: 'failed', failure: r.failure };
        patched(POLICY_PATCH);
        const d = (r.failure.details?.[0] ?? {}) as Partial<MigrationTimeoutDetails>;
        (d.lines ?? []).forEach((l) => x.op.fb(l));
        x.op.fb(`* ${r.failure.msg}${describeLast(d)}`);
        if (policy.onTimeout === 'postcopy' && policy.postcopy) return await this.postcopy(`the ${d.timeout ?? 'completion'} timeout hit`);
        if (policy.onTimeout === 'raise-downtime') {
          steps ??= downtimeSteps(this.downtimeMs, policy.maxDowntimeMs);
          const next = steps.shift();
          if (next !== undefined) {
            const raised = await this.control({ action: 'set-downtime', downtimeMs: next }, `downtime ${next} ms`);
            if (raised) return { kind: 'abort', message: raised };
            x.op.fb(`* raised the allowed downtime to ${next} ms (at most ${policy.maxDowntimeMs} ms)`);
            this.downtimeMs = next;
            const step = stepTimeoutSec(total, policy.progressTimeoutSec);
            opts = { completionTimeoutSec: step, progressTimeoutSec: 0 };
            continue;
          }
          return { kind: 'abort', message: `${r.failure.msg}, and the allowed downtime is at its maximum (${policy.maxDowntimeMs} ms)` };
        }
        return { kind: 'abort', message: r.failure.msg };
      }
    } finally {
      x.op.force.offer(null);
    }
  }

  /** One wait, in a scope of its own that an accepted force-complete cancels. */
  private async wait(opts: WaitOpts): Promise<WaitResult> {
    const { x } = this;
    const t = x.snap.cluster.timing;
    const args = { pollMs: t.migrationPollMs, progressMs: t.migrationProgressMs, ...opts };
    const scope = new CancellationScope();
    this.#scope = scope;
    try {
      const r = await scope.run(() => x.rpc.wait(x.source, 'waitForMigration', [ri(x, x.source), args]));
      return r.ok ? { kind: 'ok', payload: r.payload } : { kind: 'failed', failure: r };
    } catch (e) {
      // Only a force-complete (not an abort or a cancellation of the whole operation) ends the wait here.
      if (isCancellation(e) && x.op.force.requested && !x.op.abort && !CancellationScope.current().consideredCancelled)
        return { kind: 'forced' };
      throw e;
    } finally {
      this.#scope = null;
    }
  }

  /** instance_migration_control on the source: null, or why it failed. */
  private async control(c: MigrationControl, summary: string): Promise<string | null> {
    const { x } = this;
    const r = await x.rpc.call(x.source, 'instanceMigrationControl', [ri(x, x.source), c], summary);
    return r.ok ? null : `Could not change the migration of ${x.inst.name} (${c.action}): ${r.msg}`;
  }

  /**
   * The post-copy switch: the point of no return. Then waits for the rest without any bound (post-copy
   * ends by itself); nothing of it can be cancelled, and a failure is for an operator.
   */
  private async postcopy(why: string): Promise<TransferOutcome> {
    const { x } = this;
    const { source: S, target: T } = x;
    x.op.passPointOfNoReturn(`post-copy to ${T} was started (${why}): ${T} holds the only current state`);
    return CancellationScope.nonCancellable(async () => {
      x.op.fb(`* switching the memory transfer to post-copy (${why}); ${x.inst.name} now runs on ${T}`);
      const started = await this.control({ action: 'start-postcopy' }, 'start post-copy (point of no return)');
      if (started) {
        // Whether QEMU switched is not known: the source may no longer hold the current state.
        x.op.needsHuman(`check whether ${x.inst.name} runs on ${T}, then run '${cleanupCommand(x.inst.name)}'`);
        throw execFailure(`${started}; the migration is left as it is (past the point of no return)`);
      }
      const r = await x.rpc.wait(S, 'waitForMigration', [
        ri(x, S),
        { pollMs: x.snap.cluster.timing.migrationPollMs, progressMs: x.snap.cluster.timing.migrationProgressMs },
      ]);
      if (r.ok) return { kind: 'completed', lines: r.payload.lines };
      x.op.needsHuman(
        `find where ${x.inst.name} still runs from ${T}'s state (never resume it on ${S}), then run '${cleanupCommand(x.inst.name)}'`,
      );
      throw execFailure(
        `Post-copy migration of ${x.inst.name} to ${T} failed after the point of no return: ${r.msg}; ` +
          `${T} held the only current state, the source ${S} was not resumed`,
      );
    });
  }
}

function describeLast(d: Partial<MigrationTimeoutDetails>): string {
  const parts: string[] = [];
  if (typeof d.remainingRam === 'number') parts.push(`${d.remainingRam} MiB remaining`);
  if (typeof d.dirtyRate === 'number') parts.push(`dirty rate ${d.dirtyRate} MiB/s`);
  if (typeof d.throttlePercent === 'number' && d.throttlePercent > 0) parts.push(`throttle ${d.throttlePercent} %`);
  if (typeof d.passes === 'number') parts.push(`${d.passes} passes`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}
