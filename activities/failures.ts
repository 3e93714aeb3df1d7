/**
 * The one place where errors from the ports become Temporal failures with an explicit `type` and
 * retry class (see domain/errors.ts). Nothing here relies on class names surviving bundling.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { ActivityFailure } from '../domain/errors.js';
import { ConfigError, NodeRpcError, StoreBusyError } from '../domain/ports.js';

export function toFailure(e: unknown): Error {
  if (e instanceof ApplicationFailure || e instanceof CancelledFailure) return e;
  if (e instanceof NodeRpcError) {
    return e.transient
      ? ApplicationFailure.retryable(e.message, ActivityFailure.NodeRpcTransient)
      : ApplicationFailure.nonRetryable(e.message, ActivityFailure.NodeRpcFailed);
  }
  if (e instanceof ConfigError) return ApplicationFailure.nonRetryable(e.message, ActivityFailure.ConfigConflict);
  if (e instanceof StoreBusyError) return ApplicationFailure.retryable(e.message, ActivityFailure.NodeRpcTransient);
  // Anything else is unexpected (a bug or an environment problem): retry within the bounded policy.
  const msg = e instanceof Error ? e.message : String(e);
  return ApplicationFailure.retryable(msg, 'InternalError');
}

/** Wraps every function of an activity object so that whatever it throws is mapped by `toFailure`. */
export function mapFailures<T extends Record<string, (...args: never[]) => Promise<unknown>>>(acts: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(acts)) {
    out[name] = async (...args: never[]) => {
      try {
        return await fn(...args);
      } catch (e) {
        throw toFailure(e);
      }
    };
    Object.defineProperty(out[name], 'name', { value: name });
  }
  return out as T;
}
