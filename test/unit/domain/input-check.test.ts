/**
 * The workflows' zod-free input checks (domain/input-check.ts) accept exactly what the zod schemas
 * of domain/ops.ts accept, with the same value (defaults, key order), over a corpus of valid,
 * invalid and odd inputs; the update-argument check words its refusals as zod does. And the
 * workflow bundle's static imports reach no zod: every workflow evaluates them anew.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  checkFailoverInput,
  checkMigrateInput,
  checkShutdownInput,
  checkStartupInput,
  reasonRequestProblem,
} from '../../../domain/input-check.js';
import {
  AbortRequestSchema,
  describeZodError,
  FailoverInputSchema,
  ForceCompleteRequestSchema,
  MigrateInputSchema,
  ShutdownInputSchema,
  StartupInputSchema,
} from '../../../domain/ops.js';
import { PROJECT_ROOT } from '../../../worker/temporal-cli.js';

const NAMES: unknown[] = ['web1', 'a', 'node-2.x_y', '', 'x'.repeat(40), 'x'.repeat(41), '../etc', 'a..b', '-a', '_a', '.a', 'a b', 'é'];
const NUMBERS: unknown[] = [
  -1,
  0,
  1,
  1.5,
  30,
  120,
  86_400,
  86_401,
  1_048_576,
  1_048_577,
  2_000_000,
  2_000_001,
  99_999_999_999,
  NaN,
  Infinity,
];
const OTHERS: unknown[] = [
  true,
  false,
  null,
  undefined,
  '',
  'live',
  'non-live',
  'fast',
  'abort',
  'postcopy',
  'x'.repeat(1000),
  'x'.repeat(1001),
  [],
  {},
  ['web1'],
  '5',
];
const POLICIES: unknown[] = [
  {},
  {
    bandwidth: 100,
    maxDowntimeMs: 300,
    autoConverge: true,
    postcopy: false,
    completionTimeoutSecPerGiB: 0,
    progressTimeoutSec: 150,
    onTimeout: 'raise-downtime',
  },
  { onTimeout: 'postcopy', bandwidth: 5 },
  { onTimeout: 'postcopy', postcopy: true },
  { bandwidth: 0 },
  { maxDowntimeMs: 2_000_001 },
  { completionTimeoutSecPerGiB: -1 },
  { progressTimeoutSec: 1.5 },
  { onTimeout: 'explode' },
  { nosuch: 1 },
  { bandwidth: undefined },
  null,
  [],
];
const VALUES = [...NAMES, ...NUMBERS, ...OTHERS, ...POLICIES];

/** A small deterministic PRNG, so the corpus is the same on every run. */
function rng(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
}

/** Each field set to each value alone, unknown keys, non-objects, then random combinations. */
function corpus(fields: string[], base: Record<string, unknown>): unknown[] {
  const out: unknown[] = [base, {}, null, undefined, 'web1', 5, [], [base], { ...base, nosuch: 1 }, { ...base, a: 1, b: 2 }];
  for (const f of fields) for (const v of VALUES) out.push({ ...base, [f]: v });
  const next = rng(fields.length);
  for (let i = 0; i < 3000; i++) {
    const input: Record<string, unknown> = {};
    for (const f of fields) if (next() < 0.5) input[f] = VALUES[Math.floor(next() * VALUES.length)];
    if (next() < 0.7) input.instance = 'web1';
    out.push(input);
  }
  return out;
}

interface Case {
  name: string;
  check: (input: unknown) => object | null;
  schema: { safeParse(input: unknown): { success: boolean; data?: unknown } };
  fields: string[];
}

const CASES: Case[] = [
  {
    name: 'migrate',
    check: checkMigrateInput,
    schema: MigrateInputSchema,
    fields: [
      'instance',
      'mode',
      'live',
      'targetNode',
      'cleanup',
      'allowFailover',
      'allowRuntimeChanges',
      'ignoreIpolicy',
      'ignoreHvversions',
      'policy',
      'dryRun',
      'reason',
    ],
  },
  {
    name: 'failover',
    check: checkFailoverInput,
    schema: FailoverInputSchema,
    fields: ['instance', 'shutdownTimeout', 'ignoreConsistency', 'targetNode', 'ignoreIpolicy', 'dryRun', 'reason'],
  },
  {
    name: 'startup',
    check: checkStartupInput,
    schema: StartupInputSchema,
    fields: ['instance', 'force', 'noRemember', 'dryRun', 'reason'],
  },
  {
    name: 'shutdown',
    check: checkShutdownInput,
    schema: ShutdownInputSchema,
    fields: ['instance', 'timeout', 'noRemember', 'dryRun', 'reason'],
  },
];

describe('the zod-free input checks of the workflows', () => {
  for (const c of CASES) {
    test(`the ${c.name} check accepts exactly what its zod schema accepts, with the same value and key order`, () => {
      const inputs = corpus(c.fields, { instance: 'web1' });
      let accepted = 0;
      for (const input of inputs) {
        const zod = c.schema.safeParse(input);
        const light = c.check(input);
        expect({ input, accepted: light !== null }).toEqual({ input, accepted: zod.success });
        if (light && zod.success) {
          accepted++;
          expect(light).toStrictEqual(zod.data);
          expect(Object.keys(light)).toEqual(Object.keys(zod.data as object));
          expect(JSON.stringify(light)).toBe(JSON.stringify(zod.data));
        }
      }
      // The corpus holds both kinds in numbers.
      expect(accepted).toBeGreaterThan(50);
      expect(inputs.length - accepted).toBeGreaterThan(50);
    });
  }

  test("the update argument check refuses what AbortRequestSchema and ForceCompleteRequestSchema refuse, in zod's words", () => {
    const inputs: unknown[] = [{}, { reason: 'why' }, { reason: '' }, { reason: undefined }, null, 'x', 5, [], [1], true];
    for (const v of VALUES) inputs.push({ reason: v }, { reason: v, other: 1 });
    inputs.push({ a: 1 }, { a: 1, b: 2 }, { reason: 'x'.repeat(1001), a: 1, b: 2 });
    for (const input of inputs) {
      for (const schema of [AbortRequestSchema, ForceCompleteRequestSchema]) {
        const zod = schema.safeParse(input);
        expect({ input, problem: reasonRequestProblem(input) }).toEqual({
          input,
          problem: zod.success ? null : describeZodError(zod.error),
        });
      }
    }
  });
});

describe('the workflow bundle', () => {
  /** The modules workflows/index.ts reaches through static value imports (not `import type`, not `import()`). */
  function staticImports(): Map<string, string> {
    const seen = new Map<string, string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      const src = readFileSync(file, 'utf8');
      seen.set(file, src);
      for (const m of src.matchAll(/^(?:import|export)\s+(?!type\s)([^;]*?)\s+from\s+'([^']+)';/gms)) {
        const spec = m[2]!;
        if (m[1]!.startsWith('{') && /^\{\s*(type\s+\w+\s*,?\s*)+\}$/.test(m[1]!)) continue;
        if (spec.startsWith('.')) visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
        else seen.set(spec, '');
      }
    };
    visit(join(PROJECT_ROOT, 'workflows/index.ts'));
    return seen;
  }

  test('imports no zod statically (each workflow would build it anew)', () => {
    const reached = [...staticImports().keys()];
    expect(reached.some((f) => f.endsWith('workflows/migration.ts'))).toBe(true);
    expect(reached.filter((f) => f === 'zod' || f.startsWith('zod/'))).toEqual([]);
    const schemaModules = ['ops', 'node-ops', 'types', 'policy', 'limits', 'rpc-schemas'].map((m) => join(PROJECT_ROOT, `domain/${m}.ts`));
    expect(reached.filter((f) => schemaModules.includes(f))).toEqual([]);
  });
});
