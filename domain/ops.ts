/**
 * Operation inputs (Ganeti's opcodes) as zod schemas, and the operation results.
 * Client and workflow validate with the same schema; unknown keys are refused.
 */
import { z } from 'zod';
import { NameSchema, ReasonSchema, SHUTDOWN_TIMEOUT_MAX_SEC } from './limits.js';
import { MigrationPolicyInputSchema } from './policy.js';
import { MigrationModeSchema } from './types.js';

const name = NameSchema;

/** OpInstanceMigrate. */
export const MigrateInputSchema = z
  .object({
    instance: name,
    /** "live" or "non-live"; unset means the hypervisor's `migration_mode`. */
    mode: MigrationModeSchema.optional(),
    /** Legacy spelling of the mode; cannot be combined with `mode`. */
    live: z.boolean().optional(),
    /** Explicit target; externally mirrored only (for DRBD it must equal the secondary). */
    targetNode: name.optional(),
    /** Recover from a failed migration instead of migrating. */
    cleanup: z.boolean().default(false),
    /** Fall back to a failover when migration is impossible as determined by the prerequisites. */
    allowFailover: z.boolean().default(false),
    /** Allow ballooning the instance's memory down to fit on the target. */
    allowRuntimeChanges: z.boolean().default(true),
    ignoreIpolicy: z.boolean().default(false),
    ignoreHvversions: z.boolean().default(false),
    /** How the memory transfer is tuned and bounded (domain/policy.ts); unset fields: the instance's, then the cluster's. */
    policy: MigrationPolicyInputSchema.optional(),
    /** Run the prerequisites (and pre-hooks) only. */
    dryRun: z.boolean().default(false),
    reason: ReasonSchema.default(''),
  })
  .strict()
  .refine((i) => i.mode === undefined || i.live === undefined, {
    message: "Only one of the 'live' and 'mode' parameters are accepted",
    path: ['mode'],
  });
export type MigrateInput = z.input<typeof MigrateInputSchema>;
export type MigrateRequest = z.output<typeof MigrateInputSchema>;

/** OpInstanceFailover. */
export const FailoverInputSchema = z
  .object({
    instance: name,
    /** Seconds allowed for a soft shutdown before the instance is killed. */
    shutdownTimeout: z.number().int().nonnegative().max(SHUTDOWN_TIMEOUT_MAX_SEC).default(120),
    /** Proceed despite degraded disks on the target and shutdown/close failures on the source. */
    ignoreConsistency: z.boolean().default(false),
    /** Explicit target; externally mirrored only (for DRBD it must equal the secondary). */
    targetNode: name.optional(),
    ignoreIpolicy: z.boolean().default(false),
    dryRun: z.boolean().default(false),
    reason: ReasonSchema.default(''),
  })
  .strict();
export type FailoverInput = z.input<typeof FailoverInputSchema>;
export type FailoverRequest = z.output<typeof FailoverInputSchema>;

/** OpInstanceStartup. */
export const StartupInputSchema = z
  .object({
    instance: name,
    /** Ganeti's force: disk assembly failures on secondary nodes are warnings. */
    force: z.boolean().default(false),
    /** Do not record the admin state (the instance stays marked as it was). */
    noRemember: z.boolean().default(false),
    dryRun: z.boolean().default(false),
    reason: ReasonSchema.default(''),
  })
  .strict();
export type StartupInput = z.input<typeof StartupInputSchema>;
export type StartupRequest = z.output<typeof StartupInputSchema>;

/** OpInstanceShutdown. */
export const ShutdownInputSchema = z
  .object({
    instance: name,
    /** Seconds allowed for a soft shutdown before the instance is killed. */
    timeout: z.number().int().nonnegative().max(SHUTDOWN_TIMEOUT_MAX_SEC).default(120),
    /** Do not record the admin state (the instance stays marked up). */
    noRemember: z.boolean().default(false),
    dryRun: z.boolean().default(false),
    reason: ReasonSchema.default(''),
  })
  .strict();
export type ShutdownInput = z.input<typeof ShutdownInputSchema>;
export type ShutdownRequest = z.output<typeof ShutdownInputSchema>;

/** The `abort` update's argument (workflows/messages.ts AbortRequest). */
export const AbortRequestSchema = z.object({ reason: ReasonSchema.optional() }).strict();

/** The `forceComplete` update's argument (workflows/messages.ts ForceCompleteRequest). */
export const ForceCompleteRequestSchema = z.object({ reason: ReasonSchema.optional() }).strict();

export const OUTCOMES = ['migrated', 'failed-over', 'cleaned-up', 'started', 'stopped', 'dry-run'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** What a dry run would do. */
export interface PlanSummary {
  operation: 'migrate' | 'failover' | 'cleanup' | 'start' | 'shutdown';
  sourceNode: string;
  targetNode: string;
  mode: 'live' | 'non-live' | null;
  steps: string[];
}

export interface OperationResult {
  outcome: Outcome;
  instance: string;
  /** Start and shutdown: both name the primary node. */
  sourceNode: string;
  targetNode: string;
  feedback: string[];
  plan?: PlanSummary;
}

/** Renders zod issues as one line an operator can act on. */
export function describeZodError(err: z.ZodError): string {
  return err.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}
