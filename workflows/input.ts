/**
 * A workflow's input, validated: the zod-free check of domain/input-check.ts on the usual path, and
 * only when it refuses, the zod schema of domain/ops.ts (evaluated then, in this workflow) for the
 * verdict and the message. zod is thus not part of every workflow's modules (see domain/input-check.ts).
 */
import type { FailoverRequest, MigrateRequest, ShutdownRequest, StartupRequest } from '../domain/ops.js';

interface Requests {
  MigrateInputSchema: MigrateRequest;
  FailoverInputSchema: FailoverRequest;
  StartupInputSchema: StartupRequest;
  ShutdownInputSchema: ShutdownRequest;
}

export type Validated<T> = { ok: true; data: T } | { ok: false; message: string };

export async function validated<K extends keyof Requests>(
  checked: Requests[K] | null,
  input: unknown,
  schema: K,
): Promise<Validated<Requests[K]>> {
  if (checked) return { ok: true, data: checked };
  // One bundle, evaluated on first use (webpack's eager mode: no separate chunk).
  const ops = await import(/* webpackMode: "eager" */ '../domain/ops.js');
  const parsed = ops[schema].safeParse(input);
  return parsed.success ? { ok: true, data: parsed.data as Requests[K] } : { ok: false, message: ops.describeZodError(parsed.error) };
}
