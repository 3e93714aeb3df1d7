/**
 * Node agents heartbeat every activity while it runs, so the server notices a dead agent within the
 * activity's heartbeat timeout (cluster.timing.rpcHeartbeatTimeoutSec) instead of its start-to-close
 * timeout (up to an hour for Ganeti's "slow" RPCs), and retries the RPC on the restarted agent.
 *
 * Activities that heartbeat themselves (the long waits, activities/index.ts SELF_HEARTBEATING) are
 * left alone: their heartbeat details carry the progress that `job info` and the progress bar show,
 * and their own heartbeat cadence is their liveness — a status poll that hangs must let their
 * heartbeat time out, which a heartbeat from here would hide.
 */
import type { Context } from '@temporalio/activity';
import type { ActivityInterceptors, ActivityInterceptorsFactory } from '@temporalio/worker';

/** Never heartbeat more often than this (the SDK throttles anyway). */
const MIN_INTERVAL_MS = 100;

/** How often to heartbeat for a heartbeat timeout: a third of it, so two heartbeats may be lost. */
export const heartbeatInterval = (timeoutMs: number): number => Math.max(MIN_INTERVAL_MS, Math.floor(timeoutMs / 3));

/** The interceptor factory; activities named in `selfHeartbeating` are not touched. */
export function heartbeatInterceptor(selfHeartbeating: ReadonlySet<string> = new Set()): ActivityInterceptorsFactory {
  return (ctx: Context): ActivityInterceptors => {
    if (selfHeartbeating.has(ctx.info.activityType)) return {};
    return {
      inbound: {
        async execute(input, next) {
          const timeoutMs = ctx.info.heartbeatTimeoutMs;
          if (!timeoutMs || ctx.info.isLocal) return next(input);
          const timer = setInterval(() => ctx.heartbeat(), heartbeatInterval(timeoutMs));
          try {
            return await next(input);
          } finally {
            clearInterval(timer);
          }
        },
      },
    };
  };
}
