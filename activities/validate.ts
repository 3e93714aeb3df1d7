/**
 * The node agent's half of the trust boundary: every node activity parses its arguments with the
 * schema of that RPC (domain/rpc-schemas.ts) before anything runs, and runs on the parsed values
 * only. Arguments out of bounds — a name with "/" or "..", a hook phase that is not `pre`/`post`, an
 * environment key like `LD_PRELOAD`, a disk path outside the storage directory, a NaN or huge number —
 * are a non-retryable `InvalidRpcInput` failure, and the node is not touched (not even its RPC log).
 */
import { ApplicationFailure } from '@temporalio/common';
import { ActivityFailure } from '../domain/errors.js';
import { rpcName } from '../domain/ports.js';
import { describeRpcInputError, NODE_RPC_ARGS, type NodeRpcActivityName } from '../domain/rpc-schemas.js';

type Activities = Record<NodeRpcActivityName, (...args: never[]) => Promise<unknown>>;

/** Ganeti's names where the activity's own would not be one (`runHooks` is the hooks_runner RPC). */
const RPC_LABEL: Partial<Record<string, string>> = { runHooks: 'hooks_runner' };

/** The failure a refused argument list becomes. */
export function invalidRpcInput(activity: string, detail: string): ApplicationFailure {
  const rpc = RPC_LABEL[activity] ?? rpcName(activity);
  return ApplicationFailure.nonRetryable(`${rpc} refused: invalid arguments: ${detail}`, ActivityFailure.InvalidRpcInput);
}

/** Wraps every node activity with the argument check of its RPC; an activity without a schema is a programming error. */
export function validateInputs<T extends Activities>(acts: T & Record<Exclude<keyof T, NodeRpcActivityName>, never>): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(acts) as Array<[string, (...args: unknown[]) => Promise<unknown>]>) {
    const schema = (NODE_RPC_ARGS as Record<string, (typeof NODE_RPC_ARGS)[NodeRpcActivityName] | undefined>)[name];
    if (!schema) throw new Error(`node activity ${name} has no argument schema in domain/rpc-schemas.ts`);
    out[name] = async (...args: unknown[]) => {
      const parsed = schema.safeParse(args);
      if (!parsed.success) throw invalidRpcInput(name, describeRpcInputError(parsed.error));
      return fn(...(parsed.data as unknown[]));
    };
    Object.defineProperty(out[name], 'name', { value: name });
  }
  return out as T;
}
