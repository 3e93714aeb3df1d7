/**
 * Node operations (Ganeti's `gnt-node migrate` / `gnt-node failover`): their inputs as zod schemas,
 * their results, and the pure parts of the parent workflow — which instances it moves, where to, and
 * which may start now under the concurrency limits (C at once, O leaving a source, I arriving on a
 * target).
 */
import { z } from 'zod';
import { NameSchema, ReasonSchema, SHUTDOWN_TIMEOUT_MAX_SEC } from './limits.js';
import { MigrationPolicyInputSchema } from './policy.js';
import { EvacuationLimitsSchema, MigrationModeSchema } from './types.js';

const name = NameSchema;

/** Per-call overrides of the cluster's evacuation limits. */
export const LimitOverridesSchema = EvacuationLimitsSchema.partial().strict();
export type LimitOverrides = z.infer<typeof LimitOverridesSchema>;

/** What both node operations share. */
const common = {
  node: name,
  ignoreIpolicy: z.boolean().default(false),
  /** Every child runs its prerequisites (and pre-hooks) only; nothing moves, the node is not drained. */
  dryRun: z.boolean().default(false),
  reason: ReasonSchema.default(''),
  /** Mark the node drained first, so that nothing new is placed on it. */
  drain: z.boolean().default(false),
  /** Start no further instance once one failed (the running ones finish). */
  stopOnFailure: z.boolean().default(false),
  limits: LimitOverridesSchema.default({}),
};

/** OpNodeMigrate, plus the evacuation options. */
export const NodeMigrateInputSchema = z
  .object({
    ...common,
    mode: MigrationModeSchema.optional(),
    live: z.boolean().optional(),
    /** Explicit target for externally mirrored instances (DRBD children refuse it, as in Ganeti). */
    targetNode: name.optional(),
    allowFailover: z.boolean().default(false),
    allowRuntimeChanges: z.boolean().default(true),
    /** Every child migration's policy (domain/policy.ts). */
    policy: MigrationPolicyInputSchema.optional(),
  })
  .strict()
  .refine((i) => i.mode === undefined || i.live === undefined, {
    message: "Only one of the 'live' and 'mode' parameters are accepted",
    path: ['mode'],
  })
  .refine((i) => i.targetNode === undefined || i.targetNode !== i.node, {
    message: 'the target node must not be the node being emptied',
    path: ['targetNode'],
  });
export type NodeMigrateInput = z.input<typeof NodeMigrateInputSchema>;
export type NodeMigrateRequest = z.output<typeof NodeMigrateInputSchema>;

/** `gnt-node failover` (a client loop in Ganeti; a workflow here). */
export const NodeFailoverInputSchema = z
  .object({
    ...common,
    ignoreConsistency: z.boolean().default(false),
    shutdownTimeout: z.number().int().nonnegative().max(SHUTDOWN_TIMEOUT_MAX_SEC).default(120),
  })
  .strict();
export type NodeFailoverInput = z.input<typeof NodeFailoverInputSchema>;
export type NodeFailoverRequest = z.output<typeof NodeFailoverInputSchema>;

/** The states, results, limits and placement (plain code, no zod; the workflows import domain/node-plan.ts). */
export * from './node-plan.js';
