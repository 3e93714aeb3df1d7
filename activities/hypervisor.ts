/**
 * Node-agent activities for the hypervisor (Ganeti's node_info, instance_* and migration RPCs), plus
 * the long wait for the memory transfer as one heartbeating activity.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { ActivityFailure } from '../domain/errors.js';
import { memoryProgressLine } from '../domain/feedback.js';
import type { RpcInstance } from '../domain/instance.js';
import type {
  HvAcceptSettings,
  HvMigrationSettings,
  HvMigrationStatus,
  MigrationControl,
  MigrationStatusPayload,
  MigrationTarget,
  NodeRpc,
} from '../domain/ports.js';

export interface HypervisorActivityDeps {
  rpc: NodeRpc;
}

/** Heartbeat details of `waitForMigration` (also its resume point after a retry). */
export interface MigrationHeartbeat {
  phase: 'memory';
  node: string;
  status: HvMigrationStatus;
  transferredRam: number | null;
  totalRam: number | null;
  percent: number | null;
  /** Feedback lines produced so far. */
  lines: string[];
  lastProgressAt: number;
  unknownStatuses: number;
  /** When this wait started (ms since the epoch): the completion timeout counts from it. */
  startedAt?: number;
  /** The lowest remaining RAM seen (MiB), and when it was reached: the progress timeout counts from it. */
  lowWater?: number | null;
  lowWaterAt?: number;
  remainingRam?: number | null;
  dirtyRate?: number | null;
  throttlePercent?: number | null;
  passes?: number | null;
  downtimeLimitMs?: number | null;
  postcopy?: boolean;
  /** The bounds of this wait, seconds (0: none). */
  limits?: { completion: number; progress: number };
}

export interface WaitForMigrationOptions {
  pollMs: number;
  progressMs: number;
  /** The whole transfer may take this long from the first wait, seconds; 0 or unset: no bound. */
  completionTimeoutSec?: number;
  /** A stall: the remaining bytes have not gone down for this long, seconds; 0 or unset: none. */
  progressTimeoutSec?: number;
}

export interface WaitForMigrationResult {
  lines: string[];
  transferredRam: number | null;
  totalRam: number | null;
}

/** Details attached to a MigrationFailed failure. */
export interface MigrationFailureDetails {
  lines: string[];
  status: HvMigrationStatus;
  error?: string;
}

/** The migration failed in the hypervisor (Ganeti's "hypervisor returned failure"); not retried. */
function migrationFailed(details: MigrationFailureDetails): ApplicationFailure {
  return ApplicationFailure.create({
    message: 'hypervisor returned failure',
    type: ActivityFailure.MigrationFailed,
    nonRetryable: true,
    details: [details],
  });
}

/**
 * The pause between two status polls. On a node that offers it (the QEMU driver) it is spent waiting
 * for the hypervisor's event, and ends as soon as the status changes (the transfer ended, or switched
 * to post-copy) with that status — the next poll's answer, so it is not asked for again; otherwise, or
 * if the wait fails, it sleeps out the interval (null). Cancellable like a sleep.
 */
async function pauseUntilNextPoll(
  ctx: Context,
  rpc: NodeRpc,
  inst: RpcInstance,
  pollMs: number,
  was: HvMigrationStatus,
): Promise<MigrationStatusPayload | null> {
  const t0 = Date.now();
  if (rpc.instanceWaitMigrationEvent) {
    const waited = (async () => rpc.instanceWaitMigrationEvent!(inst, pollMs))().catch(() => null);
    const now = await Promise.race([waited, ctx.cancelled]);
    if (now && now.status !== was) return now;
  }
  const left = pollMs - (Date.now() - t0);
  if (left > 0) await ctx.sleep(left);
  return null;
}

/** Details attached to a MigrationTimedOut failure: which bound, and the last progress. */
export interface MigrationTimeoutDetails {
  timeout: 'completion' | 'progress';
  /** The bound, seconds. */
  limitSec: number;
  /** How long this wait ran, seconds. */
  elapsedSec: number;
  lines: string[];
  transferredRam: number | null;
  totalRam: number | null;
  remainingRam: number | null;
  dirtyRate: number | null;
  throttlePercent: number | null;
  passes: number | null;
  downtimeLimitMs: number | null;
}

function migrationTimedOut(which: 'completion' | 'progress', hb: MigrationHeartbeat, now: number): ApplicationFailure {
  const limitSec = which === 'completion' ? hb.limits!.completion : hb.limits!.progress;
  const details: MigrationTimeoutDetails = {
    timeout: which,
    limitSec,
    elapsedSec: Math.round((now - hb.startedAt!) / 1000),
    lines: hb.lines,
    transferredRam: hb.transferredRam,
    totalRam: hb.totalRam,
    remainingRam: hb.remainingRam ?? null,
    dirtyRate: hb.dirtyRate ?? null,
    throttlePercent: hb.throttlePercent ?? null,
    passes: hb.passes ?? null,
    downtimeLimitMs: hb.downtimeLimitMs ?? null,
  };
  const message =
    which === 'completion'
      ? `the memory transfer did not complete within its completion timeout (${limitSec} s)`
      : `the memory transfer made no progress for ${limitSec} s (progress timeout)`;
  return ApplicationFailure.create({ message, type: ActivityFailure.MigrationTimedOut, nonRetryable: true, details: [details] });
}

/** Records what one status answer says in the heartbeat. */
function observe(hb: MigrationHeartbeat, st: MigrationStatusPayload, now: number): void {
  hb.status = st.status;
  if (st.transferredRam !== undefined && st.totalRam) {
    hb.transferredRam = st.transferredRam;
    hb.totalRam = st.totalRam;
    hb.percent = (100 * st.transferredRam) / st.totalRam;
  }
  if (st.remainingRam !== undefined) {
    hb.remainingRam = st.remainingRam;
    if (hb.lowWater === undefined || hb.lowWater === null || st.remainingRam < hb.lowWater) {
      hb.lowWater = st.remainingRam;
      hb.lowWaterAt = now;
    }
  }
  if (st.dirtyRate !== undefined) hb.dirtyRate = st.dirtyRate;
  if (st.throttlePercent !== undefined) hb.throttlePercent = st.throttlePercent;
  if (st.passes !== undefined) hb.passes = st.passes;
  if (st.downtimeLimitMs !== undefined) hb.downtimeLimitMs = st.downtimeLimitMs;
  if ((st.status === 'postcopy-active' || st.postcopyStatus === 'postcopy-active') && !hb.postcopy) {
    hb.postcopy = true;
    hb.lines.push('* memory transfer has switched to postcopy');
  }
}

/** Which bound `now` is past, if any (0 or unset: none). */
function timeoutHit(hb: MigrationHeartbeat, opts: WaitForMigrationOptions, now: number): 'completion' | 'progress' | null {
  hb.limits = { completion: opts.completionTimeoutSec ?? 0, progress: opts.progressTimeoutSec ?? 0 };
  if (hb.limits.completion > 0 && now - hb.startedAt! >= hb.limits.completion * 1000) return 'completion';
  if (hb.limits.progress > 0 && hb.lowWater !== undefined && hb.lowWater !== null && now - hb.lowWaterAt! >= hb.limits.progress * 1000) {
    return 'progress';
  }
  return null;
}

/** Ms until the next bound could be hit (so the wait ends on time, not a poll later). */
function untilDeadline(hb: MigrationHeartbeat, opts: WaitForMigrationOptions, now: number, status: HvMigrationStatus): number {
  if (status === 'postcopy-active') return Number.POSITIVE_INFINITY;
  const out: number[] = [];
  if (opts.completionTimeoutSec) out.push(hb.startedAt! + opts.completionTimeoutSec * 1000 - now);
  if (opts.progressTimeoutSec && hb.lowWater !== undefined && hb.lowWater !== null)
    out.push(hb.lowWaterAt! + opts.progressTimeoutSec * 1000 - now);
  return out.length ? Math.min(...out) : Number.POSITIVE_INFINITY;
}

/** Ganeti's KVM gives up after 5 unusable status answers. */
const MAX_UNKNOWN_STATUSES = 5;

export function createHypervisorActivities({ rpc }: HypervisorActivityDeps) {
  return {
    nodeInfo: () => rpc.nodeInfo(),
    instanceList: () => rpc.instanceList(),
    instanceInfo: (inst: RpcInstance) => rpc.instanceInfo(inst),
    bridgesExist: (bridges: string[]) => rpc.bridgesExist(bridges),
    instanceMigratable: (inst: RpcInstance) => rpc.instanceMigratable(inst),
    migrationInfo: (inst: RpcInstance) => rpc.migrationInfo(inst),
    acceptInstance: (inst: RpcInstance, migrationInfo: string, targetIp: string, settings?: HvAcceptSettings) =>
      settings ? rpc.acceptInstance(inst, migrationInfo, targetIp, settings) : rpc.acceptInstance(inst, migrationInfo, targetIp),
    instanceMigrate: (inst: RpcInstance, target: MigrationTarget, live: boolean, settings?: HvMigrationSettings) =>
      settings ? rpc.instanceMigrate(inst, target, live, settings) : rpc.instanceMigrate(inst, target, live),
    instanceGetMigrationStatus: (inst: RpcInstance) => rpc.instanceGetMigrationStatus(inst),
    instanceMigrationControl: (inst: RpcInstance, control: MigrationControl) => rpc.instanceMigrationControl(inst, control),
    instanceFinalizeMigrationSrc: (inst: RpcInstance, success: boolean, live: boolean) =>
      rpc.instanceFinalizeMigrationSrc(inst, success, live),
    instanceFinalizeMigrationDst: (inst: RpcInstance, migrationInfo: string, success: boolean) =>
      rpc.instanceFinalizeMigrationDst(inst, migrationInfo, success),
    instanceBalloonMemory: (inst: RpcInstance, memory: number) => rpc.instanceBalloonMemory(inst, memory),
    instanceShutdown: (inst: RpcInstance, timeoutSec: number, reason: string) => rpc.instanceShutdown(inst, timeoutSec, reason),
    instanceStart: (inst: RpcInstance, reason: string) => rpc.instanceStart(inst, reason),

    /**
     * Ganeti's status loop (M10): polls instance_get_migration_status every `pollMs` until the
     * hypervisor reports the migration completed, with a progress line at most every `progressMs`.
     * A failed or cancelled migration is a non-retryable MigrationFailed; an RPC error fails the
     * attempt (retried if transient). Progress lives in the heartbeat details.
     *
     * The policy's bounds (issue 14), while pre-copy runs: the whole wait may take
     * `completionTimeoutSec`, and the remaining RAM must reach a new low at least every
     * `progressTimeoutSec`; otherwise a non-retryable MigrationTimedOut says which bound was hit (the
     * transfer still runs: the workflow decides what follows). Post-copy is not bounded: it ends by
     * itself.
     */
    async waitForMigration(inst: RpcInstance, opts: WaitForMigrationOptions): Promise<WaitForMigrationResult> {
      const ctx = Context.current();
      const prev = ctx.info.heartbeatDetails as MigrationHeartbeat | undefined;
      const now0 = Date.now();
      const hb: MigrationHeartbeat = {
        phase: 'memory',
        node: rpc.node,
        status: 'setup',
        transferredRam: null,
        totalRam: null,
        percent: null,
        lines: [],
        lastProgressAt: now0,
        unknownStatuses: 0,
        ...prev,
      };
      // Heartbeats of an attempt before these bounds existed carry no start (the wait restarts its clock).
      hb.startedAt ??= now0;
      hb.lowWaterAt ??= now0;
      let seen: MigrationStatusPayload | null = null;
      for (;;) {
        // What the event wait answered last (a change), or a fresh poll.
        const st = seen ?? (await rpc.instanceGetMigrationStatus(inst));
        const now = Date.now();
        observe(hb, st, now);
        if (st.status === 'failed' || st.status === 'cancelled') {
          throw migrationFailed({ lines: hb.lines, status: st.status, ...(st.error ? { error: st.error } : {}) });
        }
        if (st.status === 'setup' || st.status === 'none') {
          hb.unknownStatuses += 1;
          if (hb.unknownStatuses >= MAX_UNKNOWN_STATUSES) {
            throw migrationFailed({ lines: hb.lines, status: st.status, error: 'unknown migration status' });
          }
        } else {
          hb.unknownStatuses = 0;
        }
        if (st.status === 'completed') {
          hb.lines.push('* memory transfer complete');
          ctx.heartbeat(hb);
          return { lines: hb.lines, transferredRam: hb.transferredRam, totalRam: hb.totalRam };
        }
        if (now - hb.lastProgressAt >= opts.progressMs && hb.transferredRam !== null && hb.totalRam) {
          hb.lines.push(memoryProgressLine(hb.transferredRam, hb.totalRam));
          hb.lastProgressAt = now;
        }
        const timedOut = st.status === 'postcopy-active' ? null : timeoutHit(hb, opts, now);
        if (timedOut) {
          ctx.heartbeat(hb);
          throw migrationTimedOut(timedOut, hb, now);
        }
        ctx.heartbeat(hb);
        try {
          const pollMs = Math.max(1, Math.min(opts.pollMs, untilDeadline(hb, opts, now, st.status)));
          seen = await pauseUntilNextPoll(ctx, rpc, inst, pollMs, st.status);
        } catch (e) {
          // Cancelled (an abort): if the hypervisor completed the transfer meanwhile, the point of no
          // return is behind us and reporting completion lets the workflow roll forward.
          if (e instanceof CancelledFailure) {
            const last = await rpc.instanceGetMigrationStatus(inst).catch(() => null);
            if (last?.status === 'completed') {
              hb.lines.push('* memory transfer complete');
              return { lines: hb.lines, transferredRam: last.transferredRam ?? hb.transferredRam, totalRam: last.totalRam ?? hb.totalRam };
            }
          }
          throw e;
        }
      }
    },
  };
}
