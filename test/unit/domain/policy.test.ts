/**
 * Migration policies (domain/policy.ts): the request's bounds, the resolution order (request, then
 * the instance's hvparams, then the cluster), the hvparam migration_caps, and what is derived from a
 * policy (timeouts, the starting downtime, the feedback line).
 */
import { describe, expect, test } from 'vitest';
import {
  ClusterMigrationPolicySchema,
  completionTimeoutSec,
  DEFAULT_CLUSTER_MIGRATION_POLICY,
  initialDowntimeMs,
  MigrationCapsSchema,
  MigrationPolicyInputSchema,
  parseMigrationCaps,
  policyLine,
  policyProblem,
  QEMU_MIGRATION_CAPS,
  resolveMigrationPolicy,
  type MigrationPolicy,
} from '../../../domain/policy.js';
import { describeZodError } from '../../../domain/ops.js';
import { HvParamsSchema } from '../../../domain/types.js';

const CLUSTER = { hvparams: { migration_bandwidth: 32, migration_downtime: 30 }, migrationPolicy: ClusterMigrationPolicySchema.parse({}) };
const DEFAULTS: MigrationPolicy = { bandwidth: 32, maxDowntimeMs: 30, ...DEFAULT_CLUSTER_MIGRATION_POLICY };
const refusal = (input: unknown) => {
  const r = MigrationPolicyInputSchema.safeParse(input);
  return r.success ? null : describeZodError(r.error);
};

describe('the request', () => {
  test('every field is optional, unknown ones are refused', () => {
    expect(refusal({})).toBeNull();
    expect(refusal({ ...DEFAULTS })).toBeNull();
    expect(refusal({ speed: 1 })).toBe('Unrecognized key: "speed"');
  });

  test.each([
    [{ bandwidth: 0 }, 'bandwidth: Too small: expected number to be >=1'],
    [{ bandwidth: 1024 * 1024 + 1 }, 'bandwidth: Too big: expected number to be <=1048576'],
    [{ bandwidth: 1.5 }, 'bandwidth: Invalid input: expected int, received number'],
    [{ maxDowntimeMs: 0 }, 'maxDowntimeMs: Too small: expected number to be >=1'],
    [{ maxDowntimeMs: 2_000_001 }, 'maxDowntimeMs: Too big: expected number to be <=2000000'],
    [{ completionTimeoutSecPerGiB: -1 }, 'completionTimeoutSecPerGiB: Too small: expected number to be >=0'],
    [{ completionTimeoutSecPerGiB: 86_401 }, 'completionTimeoutSecPerGiB: Too big: expected number to be <=86400'],
    [{ progressTimeoutSec: 86_401 }, 'progressTimeoutSec: Too big: expected number to be <=86400'],
    [{ autoConverge: 'yes' }, 'autoConverge: Invalid input: expected boolean, received string'],
    [{ postcopy: 1 }, 'postcopy: Invalid input: expected boolean, received number'],
    [{ onTimeout: 'pause' }, 'onTimeout: Invalid option: expected one of "abort"|"postcopy"|"raise-downtime"'],
  ])('%j is refused', (input, message) => {
    expect(refusal(input)).toBe(message);
  });

  test('the bounds themselves are accepted', () => {
    expect(refusal({ bandwidth: 1, maxDowntimeMs: 1, completionTimeoutSecPerGiB: 0, progressTimeoutSec: 0 })).toBeNull();
    expect(
      refusal({ bandwidth: 1024 * 1024, maxDowntimeMs: 2_000_000, completionTimeoutSecPerGiB: 86_400, progressTimeoutSec: 86_400 }),
    ).toBeNull();
  });
});

describe('migration_caps', () => {
  test('is split on ":"; empty is none', () => {
    expect(parseMigrationCaps('')).toEqual([]);
    expect(parseMigrationCaps('auto-converge:postcopy-ram')).toEqual(['auto-converge', 'postcopy-ram']);
  });

  test('only QEMU capability names are accepted, in the instance hvparams too', () => {
    expect(MigrationCapsSchema.safeParse('auto-converge:postcopy-ram:xbzrle').success).toBe(true);
    expect(MigrationCapsSchema.safeParse('').success).toBe(true);
    expect(MigrationCapsSchema.safeParse('auto-converge:rm -rf').success).toBe(false);
    expect(MigrationCapsSchema.safeParse('auto-converge:').success).toBe(false);
    const refused = MigrationCapsSchema.safeParse('postcopy');
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.message).toBe(
      'must be QEMU migration capabilities separated by ":" (' + QEMU_MIGRATION_CAPS.join(', ') + ')',
    );
    expect(QEMU_MIGRATION_CAPS).toContain('postcopy-ram');
    expect(HvParamsSchema.safeParse({ migration_caps: 'postcopy' }).success).toBe(false);
    expect(HvParamsSchema.parse({ migration_caps: 'postcopy-ram' })).toEqual({ migration_caps: 'postcopy-ram' });
  });
});

describe('resolution', () => {
  test('nothing asked, nothing on the instance: the cluster, field by field', () => {
    const r = resolveMigrationPolicy(undefined, {}, CLUSTER);
    expect(r.policy).toEqual(DEFAULTS);
    expect(Object.values(r.sources).every((s) => s === 'cluster')).toBe(true);
  });

  test('the defaults are Nova-like: 800 s/GiB, a 150 s stall, abort; no auto-converge, no post-copy', () => {
    expect(DEFAULT_CLUSTER_MIGRATION_POLICY).toEqual({
      autoConverge: false,
      postcopy: false,
      completionTimeoutSecPerGiB: 800,
      progressTimeoutSec: 150,
      onTimeout: 'abort',
    });
  });

  test('a cluster recorded before migrationPolicy existed resolves to the defaults', () => {
    expect(resolveMigrationPolicy({}, {}, { hvparams: CLUSTER.hvparams }).policy).toEqual(DEFAULTS);
    expect(resolveMigrationPolicy({}, {}, { hvparams: CLUSTER.hvparams, migrationPolicy: {} }).policy).toEqual(DEFAULTS);
  });

  test('the cluster: its hvparams for bandwidth and downtime, its migrationPolicy for the rest', () => {
    const cluster = {
      hvparams: { migration_bandwidth: 100, migration_downtime: 300 },
      migrationPolicy: {
        autoConverge: true,
        postcopy: true,
        completionTimeoutSecPerGiB: 5,
        progressTimeoutSec: 6,
        onTimeout: 'postcopy' as const,
      },
    };
    expect(resolveMigrationPolicy({}, {}, cluster).policy).toEqual({ bandwidth: 100, maxDowntimeMs: 300, ...cluster.migrationPolicy });
  });

  test('the instance hvparams win over the cluster, migration_caps decides auto-converge and post-copy', () => {
    const r = resolveMigrationPolicy(
      {},
      { migration_bandwidth: 64, migration_downtime: 100, migration_caps: 'postcopy-ram' },
      {
        ...CLUSTER,
        migrationPolicy: { ...CLUSTER.migrationPolicy, autoConverge: true },
      },
    );
    expect(r.policy).toEqual({ ...DEFAULTS, bandwidth: 64, maxDowntimeMs: 100, autoConverge: false, postcopy: true });
    expect(r.sources).toEqual({
      bandwidth: 'instance',
      maxDowntimeMs: 'instance',
      autoConverge: 'instance',
      postcopy: 'instance',
      completionTimeoutSecPerGiB: 'cluster',
      progressTimeoutSec: 'cluster',
      onTimeout: 'cluster',
    });
    // An empty migration_caps is the instance's word too: both off.
    const empty = resolveMigrationPolicy(
      {},
      { migration_caps: '' },
      { ...CLUSTER, migrationPolicy: { ...CLUSTER.migrationPolicy, postcopy: true } },
    );
    expect(empty.policy.postcopy).toBe(false);
    expect(empty.sources.postcopy).toBe('instance');
  });

  test('the request wins over everything, false and 0 included', () => {
    const req = {
      bandwidth: 8,
      maxDowntimeMs: 9,
      autoConverge: false,
      postcopy: false,
      completionTimeoutSecPerGiB: 0,
      progressTimeoutSec: 0,
      onTimeout: 'raise-downtime' as const,
    };
    const r = resolveMigrationPolicy(
      req,
      { migration_bandwidth: 64, migration_downtime: 100, migration_caps: 'auto-converge:postcopy-ram' },
      CLUSTER,
    );
    expect(r.policy).toEqual(req);
    expect(Object.values(r.sources).every((s) => s === 'request')).toBe(true);
  });
});

describe('what a policy implies', () => {
  test('the completion timeout scales with the memory (per GiB, rounded up); 0 stays 0', () => {
    expect(completionTimeoutSec({ completionTimeoutSecPerGiB: 800 }, 1024)).toBe(800);
    expect(completionTimeoutSec({ completionTimeoutSecPerGiB: 800 }, 512)).toBe(400);
    expect(completionTimeoutSec({ completionTimeoutSecPerGiB: 3 }, 100)).toBe(1);
    expect(completionTimeoutSec({ completionTimeoutSecPerGiB: 0 }, 4096)).toBe(0);
  });

  test('raise-downtime starts at the hypervisor downtime (at most the maximum); the others at the maximum', () => {
    expect(initialDowntimeMs({ ...DEFAULTS, maxDowntimeMs: 500, onTimeout: 'raise-downtime' }, 30)).toBe(30);
    expect(initialDowntimeMs({ ...DEFAULTS, maxDowntimeMs: 20, onTimeout: 'raise-downtime' }, 30)).toBe(20);
    expect(initialDowntimeMs({ ...DEFAULTS, maxDowntimeMs: 500, onTimeout: 'abort' }, 30)).toBe(500);
    expect(initialDowntimeMs({ ...DEFAULTS, maxDowntimeMs: 500, onTimeout: 'postcopy' }, 30)).toBe(500);
  });

  test('on timeout postcopy needs post-copy allowed', () => {
    expect(policyProblem({ ...DEFAULTS, onTimeout: 'postcopy', postcopy: false })).toBe(
      "on timeout 'postcopy' needs post-copy to be allowed",
    );
    expect(policyProblem({ ...DEFAULTS, onTimeout: 'postcopy', postcopy: true })).toBeNull();
    expect(policyProblem({ ...DEFAULTS, onTimeout: 'abort', postcopy: false })).toBeNull();
  });

  test('the feedback line names every field, and where it came from unless from the cluster', () => {
    expect(policyLine(resolveMigrationPolicy(undefined, {}, CLUSTER), 2048)).toBe(
      '* migration policy: bandwidth 32 MiB/s, max downtime 30 ms, auto-converge off, post-copy not allowed, ' +
        'completion timeout 800 s/GiB (1600 s), progress timeout 150 s, on timeout abort',
    );
    const r = resolveMigrationPolicy(
      { completionTimeoutSecPerGiB: 0, progressTimeoutSec: 0, onTimeout: 'postcopy' },
      { migration_bandwidth: 64, migration_caps: 'auto-converge:postcopy-ram' },
      CLUSTER,
    );
    expect(policyLine(r, 1024)).toBe(
      '* migration policy: bandwidth 64 MiB/s (instance), max downtime 30 ms, auto-converge on (instance), ' +
        'post-copy allowed (instance), no completion timeout (request), no progress timeout (request), on timeout postcopy (request)',
    );
  });
});
