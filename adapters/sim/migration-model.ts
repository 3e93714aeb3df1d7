/**
 * The simulated memory transfer (QEMU pre-copy, with auto-converge, post-copy and a paused source),
 * derived on read from the migration's last checkpoint, like every time-based quantity of the
 * simulator (state.ts): nothing ticks.
 *
 * Pre-copy runs in passes. The first sends the whole RAM; each later one sends what the guest
 * dirtied during the one before, but a pass takes at least MIN_PASS_SEC (QEMU's bitmap syncs are
 * not continuous), so a guest always leaves at least `dirty rate × MIN_PASS_SEC` behind. After a
 * pass, if what is left can be sent within the downtime limit, the guest is paused for that long and
 * the migration completes; otherwise another pass runs. So the dirty rate against the bandwidth and
 * the downtime limit decide convergence: a guest dirtying at least the bandwidth never converges,
 * and neither does one whose minimal dirty set does not fit in the downtime.
 * - auto-converge: from the second pass on, while the guest dirties more than half the bandwidth
 *   (QEMU's throttle-trigger-threshold), each pass raises the vCPU throttle: 20 %, then +10 % per
 *   pass up to 99 % (QEMU's cpu-throttle-initial/increment/max); the dirty rate shrinks with it.
 * - post-copy (`start-postcopy`): the destination runs at once; what is left is sent at the
 *   bandwidth, in bounded time.
 * - a paused source (`pause-source`): the guest dirties nothing more; what is left is sent at the
 *   bandwidth and the migration completes non-live (the destination stays paused).
 *
 * "remaining" moves linearly from one pass's dirty set to the next one's (the dirty pages counted as
 * they are dirtied): flat when the transfer makes no progress, which is what a stall detector needs.
 */
import type { SimMigration } from './state.js';

/** The shortest pass, seconds. */
export const MIN_PASS_SEC = 0.05;
export const THROTTLE_INITIAL = 20;
export const THROTTLE_INCREMENT = 10;
export const THROTTLE_MAX = 99;
/** Downtime limit of a migration recorded before it had one (no check: it always fits). */
const NO_LIMIT_MS = Number.POSITIVE_INFINITY;

export type SimMigrationPhase = 'precopy' | 'postcopy' | 'stopcopy';

/** Where the transfer stood at a checkpoint (its start, or the last change through migration control). */
export interface SimMigrationBase {
  /** Sim ms. */
  at: number;
  transferred: number;
  remaining: number;
  passes: number;
  throttle: number;
  phase: SimMigrationPhase;
}

export interface MigrationProgress {
  transferred: number;
  done: boolean;
  /** MiB left to send. */
  remaining: number;
  passes: number;
  throttle: number;
  /** MiB/s the guest dirties now (after the throttle). */
  dirtyRate: number;
  phase: SimMigrationPhase;
}

export function baseOf(m: SimMigration): SimMigrationBase {
  return m.base ?? { at: m.startedAt, transferred: 0, remaining: m.ram, passes: 0, throttle: 0, phase: 'precopy' };
}

const effectiveDirty = (m: SimMigration, throttle: number, phase: SimMigrationPhase): number =>
  m.live && phase === 'precopy' ? m.dirtyRate * (1 - throttle / 100) : 0;

/** The transfer at `now` (sim ms). */
export function migrationProgress(m: SimMigration, now: number): MigrationProgress {
  const b = baseOf(m);
  const B = m.bandwidth;
  const out = (transferred: number, remaining: number, passes: number, throttle: number, done: boolean): MigrationProgress => ({
    transferred,
    done,
    remaining: Math.max(0, remaining),
    passes,
    throttle,
    dirtyRate: effectiveDirty(m, throttle, b.phase),
    phase: b.phase,
  });
  let elapsed = Math.max(0, (now - b.at) / 1000);
  // A mirrored (real) migration carries no bandwidth: the simulator never completes it.
  if (B <= 0) return out(b.transferred, b.remaining, b.passes, b.throttle, false);
  if (b.phase !== 'precopy') {
    const left = b.remaining - elapsed * B;
    if (left <= 0) return out(b.transferred + b.remaining, 0, b.passes + 1, b.throttle, true);
    return out(b.transferred + elapsed * B, left, b.passes, b.throttle, false);
  }
  const limitMiB = (B * (m.downtimeMs ?? NO_LIMIT_MS)) / 1000;
  let { transferred, remaining: R, passes, throttle } = b;
  for (;;) {
    const D = effectiveDirty(m, throttle, 'precopy');
    const sendSec = R / B;
    const passSec = Math.max(MIN_PASS_SEC, sendSec);
    const next = Math.min(m.ram, D * passSec);
    if (elapsed < passSec) {
      const f = elapsed / passSec;
      return out(transferred + Math.min(R, elapsed * B), R + (next - R) * f, passes, throttle, false);
    }
    elapsed -= passSec;
    transferred += R;
    passes += 1;
    if (next <= limitMiB) {
      // The stop-and-copy: the guest pauses while the rest is sent (within the downtime limit).
      const stopSec = next / B;
      if (elapsed < stopSec) return out(transferred + elapsed * B, next - elapsed * B, passes, throttle, false);
      return out(transferred + next, 0, passes, throttle, true);
    }
    const throttling = m.autoConverge === true && D > B / 2 && throttle < THROTTLE_MAX;
    if (throttling && passes >= 2) throttle = throttle === 0 ? THROTTLE_INITIAL : Math.min(THROTTLE_MAX, throttle + THROTTLE_INCREMENT);
    else if (!throttling && next >= R - 1e-9 && next <= R + 1e-9) {
      // Steady state: every further pass is the same; skip the ones that fit in the time left.
      const skip = Math.floor(elapsed / passSec);
      passes += skip;
      transferred += skip * next;
      elapsed -= skip * passSec;
    }
    R = next;
  }
}

/** A new checkpoint at `now` (before a change of the transfer's parameters or phase). */
export function checkpoint(m: SimMigration, now: number, phase?: SimMigrationPhase): void {
  const p = migrationProgress(m, now);
  m.base = {
    at: now,
    transferred: p.transferred,
    remaining: p.remaining,
    passes: p.passes,
    throttle: p.throttle,
    phase: phase ?? p.phase,
  };
}
