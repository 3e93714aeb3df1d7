/**
 * The plain part of the migration policies (domain/policy.ts): constants, field list and the
 * per-migration resolution, without zod, so that the workflow bundle builds no zod schema per
 * workflow. domain/policy.ts re-exports all of it next to its schemas. Pure.
 */
import type { ClusterMigrationPolicy, MigrationPolicyInput } from './policy.js';

export const ON_TIMEOUT_ACTIONS = ['abort', 'postcopy', 'raise-downtime'] as const;

/** A completion timeout, seconds per GiB of guest memory (one day). */
export const COMPLETION_TIMEOUT_MAX_SEC_PER_GIB = 86_400;
/** A progress (stall) timeout, seconds (one day). */
export const PROGRESS_TIMEOUT_MAX_SEC = 86_400;

export type MigrationPolicyField = keyof MigrationPolicyInput;
export const POLICY_FIELDS = [
  'bandwidth',
  'maxDowntimeMs',
  'autoConverge',
  'postcopy',
  'completionTimeoutSecPerGiB',
  'progressTimeoutSec',
  'onTimeout',
] as const satisfies readonly MigrationPolicyField[];

/** Every field resolved. */
export type MigrationPolicy = { [K in MigrationPolicyField]-?: NonNullable<MigrationPolicyInput[K]> };

export type PolicySource = 'request' | 'instance' | 'cluster';

export interface ResolvedMigrationPolicy {
  policy: MigrationPolicy;
  /** Where each field came from. */
  sources: Record<MigrationPolicyField, PolicySource>;
}

/**
 * The cluster's defaults for what is not a Ganeti hvparam (`cluster.migrationPolicy`). Chosen after
 * the peer systems: Nova's completion timeout of 800 s per GiB, KubeVirt's progress timeout of
 * 150 s, abort on timeout (both systems' default); auto-converge and post-copy off (Ganeti's
 * `migration_caps` is empty by default).
 */
export const DEFAULT_CLUSTER_MIGRATION_POLICY = {
  autoConverge: false,
  postcopy: false,
  completionTimeoutSecPerGiB: 800,
  progressTimeoutSec: 150,
  onTimeout: 'abort',
} as const satisfies Omit<MigrationPolicy, 'bandwidth' | 'maxDowntimeMs'>;

/**
 * QEMU's migration capabilities (`migrate-set-capabilities`), the names Ganeti's KVM hvparam
 * `migration_caps` lists, ':'-separated.
 */
export const QEMU_MIGRATION_CAPS = [
  'xbzrle',
  'rdma-pin-all',
  'auto-converge',
  'zero-blocks',
  'events',
  'postcopy-ram',
  'x-colo',
  'release-ram',
  'return-path',
  'pause-before-switchover',
  'multifd',
  'dirty-bitmaps',
  'postcopy-blocktime',
  'late-block-activate',
  'x-ignore-shared',
  'validate-uuid',
  'background-snapshot',
  'zero-copy-send',
  'postcopy-preempt',
  'switchover-ack',
  'dirty-limit',
  'mapped-ram',
] as const;

/** Splits `migration_caps` ("auto-converge:postcopy-ram"; "" is none). */
export function parseMigrationCaps(caps: string): string[] {
  return caps === '' ? [] : caps.split(':');
}

/** The instance's own hypervisor parameters that a policy falls back to (unset: not the instance's). */
export interface PolicyHvParams {
  migration_bandwidth?: number | undefined;
  migration_downtime?: number | undefined;
  migration_caps?: string | undefined;
}

/** The cluster's side: its hvparams and its `migrationPolicy` (absent in configurations recorded before it existed). */
export interface ClusterPolicyDefaults {
  hvparams: { migration_bandwidth: number; migration_downtime: number };
  migrationPolicy?: Partial<ClusterMigrationPolicy> | undefined;
}

/** Resolves every field: the request's, else the instance's, else the cluster's. */
export function resolveMigrationPolicy(
  requested: MigrationPolicyInput | undefined,
  hvparams: PolicyHvParams,
  cluster: ClusterPolicyDefaults,
): ResolvedMigrationPolicy {
  const req = requested ?? {};
  const caps = hvparams.migration_caps === undefined ? undefined : parseMigrationCaps(hvparams.migration_caps);
  const instance: MigrationPolicyInput = {};
  if (hvparams.migration_bandwidth !== undefined) instance.bandwidth = hvparams.migration_bandwidth;
  if (hvparams.migration_downtime !== undefined) instance.maxDowntimeMs = hvparams.migration_downtime;
  if (caps) {
    instance.autoConverge = caps.includes('auto-converge');
    instance.postcopy = caps.includes('postcopy-ram');
  }
  const clusterPolicy: MigrationPolicy = {
    ...DEFAULT_CLUSTER_MIGRATION_POLICY,
    ...definedOnly(cluster.migrationPolicy ?? {}),
    bandwidth: cluster.hvparams.migration_bandwidth,
    maxDowntimeMs: cluster.hvparams.migration_downtime,
  };
  const policy = {} as Record<MigrationPolicyField, unknown>;
  const sources = {} as Record<MigrationPolicyField, PolicySource>;
  for (const f of POLICY_FIELDS) {
    if (req[f] !== undefined) {
      policy[f] = req[f];
      sources[f] = 'request';
    } else if (instance[f] !== undefined) {
      policy[f] = instance[f];
      sources[f] = 'instance';
    } else {
      policy[f] = clusterPolicy[f];
      sources[f] = 'cluster';
    }
  }
  return { policy: policy as MigrationPolicy, sources };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Why a resolved policy cannot be used (its fields contradict each other), or null. */
export function policyProblem(p: MigrationPolicy): string | null {
  if (p.onTimeout === 'postcopy' && !p.postcopy) return "on timeout 'postcopy' needs post-copy to be allowed";
  return null;
}

/** The downtime a transfer starts with: `raise-downtime` starts at the hypervisor's and raises it on timeout. */
export function initialDowntimeMs(p: MigrationPolicy, hvDowntimeMs: number): number {
  return p.onTimeout === 'raise-downtime' ? Math.min(hvDowntimeMs, p.maxDowntimeMs) : p.maxDowntimeMs;
}

/** The completion timeout of a transfer of `memoryMib`, seconds (0: none). */
export function completionTimeoutSec(policy: Pick<MigrationPolicy, 'completionTimeoutSecPerGiB'>, memoryMib: number): number {
  return Math.ceil((policy.completionTimeoutSecPerGiB * memoryMib) / 1024);
}

/** The feedback line that shows the chosen policy. */
export function policyLine({ policy: p, sources }: ResolvedMigrationPolicy, memoryMib: number): string {
  const from = (f: MigrationPolicyField) => (sources[f] === 'cluster' ? '' : ` (${sources[f]})`);
  const total = completionTimeoutSec(p, memoryMib);
  const completion =
    p.completionTimeoutSecPerGiB === 0 ? 'no completion timeout' : `completion timeout ${p.completionTimeoutSecPerGiB} s/GiB (${total} s)`;
  const progress = p.progressTimeoutSec === 0 ? 'no progress timeout' : `progress timeout ${p.progressTimeoutSec} s`;
  return (
    `* migration policy: bandwidth ${p.bandwidth} MiB/s${from('bandwidth')}, max downtime ${p.maxDowntimeMs} ms${from('maxDowntimeMs')}, ` +
    `auto-converge ${p.autoConverge ? 'on' : 'off'}${from('autoConverge')}, ` +
    `post-copy ${p.postcopy ? 'allowed' : 'not allowed'}${from('postcopy')}, ` +
    `${completion}${from('completionTimeoutSecPerGiB')}, ${progress}${from('progressTimeoutSec')}, ` +
    `on timeout ${p.onTimeout}${from('onTimeout')}`
  );
}
