/**
 * The workflows' own check of their inputs, without zod. Every workflow evaluates the workflow
 * bundle's modules anew (the SDK isolates workflows by module instance), and zod with the domain's
 * schemas costs each one about 1 MiB of heap and several ms of the orchestrator's workflow thread —
 * with a thousand workflows in the sticky cache, more memory than the whole orchestrator may use.
 *
 * Each check accepts exactly what its zod schema in domain/ops.ts accepts and returns the same
 * value (defaults filled, keys in the schema's order); anything else is `null`, and the workflow
 * then asks the zod schema (loaded only then) for the verdict and the message. So zod stays the one
 * definition of what is valid and of the messages; test/unit/domain/input-check.test.ts holds these
 * checks to it. The update arguments (`{ reason? }`) are checked synchronously (an update validator
 * cannot wait for a module), with zod's messages.
 */
import { BANDWIDTH_MAX_MIBPS, DOWNTIME_MAX_MS, NAME_MAX_LENGTH, NAME_RE, REASON_MAX_LENGTH, SHUTDOWN_TIMEOUT_MAX_SEC } from './bounds.js';
import { MIGRATION_MODES } from './model.js';
import type { FailoverRequest, MigrateRequest, ShutdownRequest, StartupRequest } from './ops.js';
import { COMPLETION_TIMEOUT_MAX_SEC_PER_GIB, ON_TIMEOUT_ACTIONS, PROGRESS_TIMEOUT_MAX_SEC } from './policy-rules.js';

const BAD = Symbol('bad');
type Parse = (v: unknown) => unknown;
/** A field: its parser, and whether an absent (or undefined) value is allowed, or its default. */
type Field = { parse: Parse; optional: true } | { parse: Parse; dflt: unknown } | { parse: Parse };

// As zod's object check (any non-null, non-array object; payloads are plain JSON objects).
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const name: Parse = (v) => (typeof v === 'string' && v.length >= 1 && v.length <= NAME_MAX_LENGTH && NAME_RE.test(v) ? v : BAD);
const reason: Parse = (v) => (typeof v === 'string' && v.length <= REASON_MAX_LENGTH ? v : BAD);
const bool: Parse = (v) => (typeof v === 'boolean' ? v : BAD);
const int =
  (min: number, max: number): Parse =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : BAD;
const oneOf =
  (values: readonly string[]): Parse =>
  (v) =>
    typeof v === 'string' && values.includes(v) ? v : BAD;

const opt = (parse: Parse): Field => ({ parse, optional: true });
const dflt = (parse: Parse, value: unknown): Field => ({ parse, dflt: value });

/** A strict object (unknown keys refused) as zod parses it: fields in the shape's order, defaults filled. */
function object(shape: Record<string, Field>): Parse {
  return (v) => {
    if (!isObject(v)) return BAD;
    for (const k of Object.keys(v)) if (!Object.hasOwn(shape, k)) return BAD;
    const out: Record<string, unknown> = {};
    for (const [k, f] of Object.entries(shape)) {
      const present = Object.hasOwn(v, k);
      const value = v[k];
      if (value === undefined) {
        if ('dflt' in f) out[k] = f.dflt;
        else if ('optional' in f) {
          if (present) out[k] = undefined;
        } else return BAD;
        continue;
      }
      const parsed = f.parse(value);
      if (parsed === BAD) return BAD;
      out[k] = parsed;
    }
    return out;
  };
}

const policy = object({
  bandwidth: opt(int(1, BANDWIDTH_MAX_MIBPS)),
  maxDowntimeMs: opt(int(1, DOWNTIME_MAX_MS)),
  autoConverge: opt(bool),
  postcopy: opt(bool),
  completionTimeoutSecPerGiB: opt(int(0, COMPLETION_TIMEOUT_MAX_SEC_PER_GIB)),
  progressTimeoutSec: opt(int(0, PROGRESS_TIMEOUT_MAX_SEC)),
  onTimeout: opt(oneOf(ON_TIMEOUT_ACTIONS)),
});

const migrate = object({
  instance: { parse: name },
  mode: opt(oneOf(MIGRATION_MODES)),
  live: opt(bool),
  targetNode: opt(name),
  cleanup: dflt(bool, false),
  allowFailover: dflt(bool, false),
  allowRuntimeChanges: dflt(bool, true),
  ignoreIpolicy: dflt(bool, false),
  ignoreHvversions: dflt(bool, false),
  policy: opt(policy),
  dryRun: dflt(bool, false),
  reason: dflt(reason, ''),
});

const failover = object({
  instance: { parse: name },
  shutdownTimeout: dflt(int(0, SHUTDOWN_TIMEOUT_MAX_SEC), 120),
  ignoreConsistency: dflt(bool, false),
  targetNode: opt(name),
  ignoreIpolicy: dflt(bool, false),
  dryRun: dflt(bool, false),
  reason: dflt(reason, ''),
});

const startup = object({
  instance: { parse: name },
  force: dflt(bool, false),
  noRemember: dflt(bool, false),
  dryRun: dflt(bool, false),
  reason: dflt(reason, ''),
});

const shutdown = object({
  instance: { parse: name },
  timeout: dflt(int(0, SHUTDOWN_TIMEOUT_MAX_SEC), 120),
  noRemember: dflt(bool, false),
  dryRun: dflt(bool, false),
  reason: dflt(reason, ''),
});

const result = <T>(v: unknown): T | null => (v === BAD ? null : (v as T));

/** MigrateInputSchema's value of `input`, or null (then ask the schema). */
export function checkMigrateInput(input: unknown): MigrateRequest | null {
  const r = result<MigrateRequest>(migrate(input));
  return r && r.mode !== undefined && r.live !== undefined ? null : r;
}
/** FailoverInputSchema's value of `input`, or null (then ask the schema). */
export const checkFailoverInput = (input: unknown): FailoverRequest | null => result(failover(input));
/** StartupInputSchema's value of `input`, or null (then ask the schema). */
export const checkStartupInput = (input: unknown): StartupRequest | null => result(startup(input));
/** ShutdownInputSchema's value of `input`, or null (then ask the schema). */
export const checkShutdownInput = (input: unknown): ShutdownRequest | null => result(shutdown(input));

const received = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' && !Number.isFinite(v) ? String(v) : typeof v;

/**
 * What is wrong with an update's `{ reason? }` argument (AbortRequestSchema, ForceCompleteRequestSchema),
 * in zod's words (describeZodError), or null when it is valid.
 */
export function reasonRequestProblem(req: unknown): string | null {
  if (typeof req !== 'object' || req === null || Array.isArray(req)) return `Invalid input: expected object, received ${received(req)}`;
  const issues: string[] = [];
  const r = (req as { reason?: unknown }).reason;
  if (r !== undefined) {
    if (typeof r !== 'string') issues.push(`reason: Invalid input: expected string, received ${received(r)}`);
    else if (r.length > REASON_MAX_LENGTH) issues.push(`reason: must be at most ${REASON_MAX_LENGTH} characters`);
  }
  const unknown = Object.keys(req).filter((k) => k !== 'reason');
  if (unknown.length) issues.push(`Unrecognized key${unknown.length > 1 ? 's' : ''}: ${unknown.map((k) => JSON.stringify(k)).join(', ')}`);
  return issues.length ? issues.join('; ') : null;
}
