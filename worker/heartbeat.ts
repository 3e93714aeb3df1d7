/**
 * Node agents heartbeat every activity while it runs, so the server notices a dead agent within the
 * activity's heartbeat timeout (cluster.timing.rpcHeartbeatTimeoutSec) instead of its start-to-close
 * timeout (up to an hour for Ganeti's "slow" RPCs), and retries the RPC on the restarted agent.
 *
 * Activities that heartbeat themselves (the long waits, whose heartbeat details carry the progress
 * that `job info` and the progress bar show) keep control of their details: the interceptor stays
 * quiet while they heartbeat often enough, and otherwise re-sends the last details they sent (or,
 * before their first heartbeat, those of the previous attempt), never empty ones.
 */
import type { Context } from '@temporalio/activity';
import type { ActivityInterceptors } from '@temporalio/worker';

/** Never heartbeat more often than this (the SDK throttles anyway). */
const MIN_INTERVAL_MS = 100;

/** How often to heartbeat for a heartbeat timeout: a third of it, so two heartbeats may be lost. */
export const heartbeatInterval = (timeoutMs: number): number => Math.max(MIN_INTERVAL_MS, Math.floor(timeoutMs / 3));

export function heartbeatInterceptor(ctx: Context): ActivityInterceptors {
  return {
    inbound: {
      async execute(input, next) {
        const timeoutMs = ctx.info.heartbeatTimeoutMs;
        if (!timeoutMs || ctx.info.isLocal) return next(input);
        const every = heartbeatInterval(timeoutMs);
        const send = ctx.heartbeat.bind(ctx);
        let lastAt = 0;
        let lastDetails: unknown = ctx.info.heartbeatDetails;
        // The activity's own heartbeats (Context.current().heartbeat and activity.heartbeat both call this
        // per-activity function, an own property of the context; replaced for this execution only).
        (ctx as { heartbeat: Context['heartbeat'] }).heartbeat = (details?: unknown) => {
          lastAt = Date.now();
          lastDetails = details;
          send(details);
        };
        const timer = setInterval(() => {
          if (Date.now() - lastAt < every) return;
          lastAt = Date.now();
          send(lastDetails);
        }, every);
        try {
          return await next(input);
        } finally {
          clearInterval(timer);
        }
      },
    },
  };
}
