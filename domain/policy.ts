/**
 * Migration policies (issue 14): how one memory transfer is tuned (bandwidth, allowed downtime,
 * auto-converge, post-copy) and bounded (a completion timeout per GiB of guest memory, a progress
 * timeout for a stall), and what happens when a bound is hit. Ours, not Ganeti's: Ganeti only has the
 * KVM hvparams `migration_bandwidth`, `migration_downtime` and `migration_caps`, and no timeout.
 *
 * A policy is resolved per migration from the request, falling back to the instance's hvparams
 * (where Ganeti has a per-instance parameter), then to the cluster (its hvparams for bandwidth and
 * downtime, its `migrationPolicy` for the rest). Pure.
 */
import { z } from 'zod';
import { BANDWIDTH_MAX_MIBPS, DOWNTIME_MAX_MS } from './limits.js';
import {
  COMPLETION_TIMEOUT_MAX_SEC_PER_GIB,
  DEFAULT_CLUSTER_MIGRATION_POLICY,
  ON_TIMEOUT_ACTIONS,
  parseMigrationCaps,
  PROGRESS_TIMEOUT_MAX_SEC,
  QEMU_MIGRATION_CAPS,
} from './policy-rules.js';

/** The constants and the resolution (plain code, no zod; the workflows import domain/policy-rules.ts). */
export * from './policy-rules.js';

export const OnTimeoutSchema = z.enum(ON_TIMEOUT_ACTIONS);
export type OnTimeout = z.infer<typeof OnTimeoutSchema>;

export const BandwidthSchema = z.number().int().min(1).max(BANDWIDTH_MAX_MIBPS);
export const DowntimeSchema = z.number().int().min(1).max(DOWNTIME_MAX_MS);
export const CompletionTimeoutSchema = z.number().int().min(0).max(COMPLETION_TIMEOUT_MAX_SEC_PER_GIB);
export const ProgressTimeoutSchema = z.number().int().min(0).max(PROGRESS_TIMEOUT_MAX_SEC);

/** What a request may set; every field optional (unset: the instance's, then the cluster's). */
export const MigrationPolicyInputSchema = z
  .object({
    /** MiB/s. */
    bandwidth: BandwidthSchema.optional(),
    /** The longest the guest may be paused for the final switch-over, ms. */
    maxDowntimeMs: DowntimeSchema.optional(),
    /** QEMU's `auto-converge` capability: throttle the guest's vCPUs while the transfer lags. */
    autoConverge: z.boolean().optional(),
    /** Post-copy allowed (the `postcopy-ram` capability is enabled; the switch comes on timeout or force-complete). */
    postcopy: z.boolean().optional(),
    /** The whole transfer may take this many seconds per GiB of guest memory; 0: no timeout. */
    completionTimeoutSecPerGiB: CompletionTimeoutSchema.optional(),
    /** A stall: the remaining bytes have not gone down for this long, seconds; 0: none. */
    progressTimeoutSec: ProgressTimeoutSchema.optional(),
    /** What a timeout does. */
    onTimeout: OnTimeoutSchema.optional(),
  })
  .strict();
export type MigrationPolicyInput = z.infer<typeof MigrationPolicyInputSchema>;

export const ClusterMigrationPolicySchema = z.object({
  autoConverge: z.boolean().default(DEFAULT_CLUSTER_MIGRATION_POLICY.autoConverge),
  postcopy: z.boolean().default(DEFAULT_CLUSTER_MIGRATION_POLICY.postcopy),
  completionTimeoutSecPerGiB: CompletionTimeoutSchema.default(DEFAULT_CLUSTER_MIGRATION_POLICY.completionTimeoutSecPerGiB),
  progressTimeoutSec: ProgressTimeoutSchema.default(DEFAULT_CLUSTER_MIGRATION_POLICY.progressTimeoutSec),
  onTimeout: OnTimeoutSchema.default(DEFAULT_CLUSTER_MIGRATION_POLICY.onTimeout),
});
export type ClusterMigrationPolicy = z.infer<typeof ClusterMigrationPolicySchema>;

export const MigrationCapsSchema = z
  .string()
  .max(512)
  .refine((caps) => parseMigrationCaps(caps).every((c) => (QEMU_MIGRATION_CAPS as readonly string[]).includes(c)), {
    message: `must be QEMU migration capabilities separated by ":" (${QEMU_MIGRATION_CAPS.join(', ')})`,
  });
