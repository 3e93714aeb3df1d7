/**
 * The arguments of every node RPC as zod schemas: what a node agent accepts (activities/validate.ts
 * parses each call's arguments with these before anything runs on the node). The orchestrator builds
 * the same values from a configuration held to the same bounds (domain/limits.ts, domain/types.ts),
 * so a well-formed operation never trips them; a call forged by any other client of the namespace
 * does, and is refused as `InvalidRpcInput` (domain/errors.ts) without touching the node.
 */
import { z } from 'zod';
import { HOOK_ENV_KEY_RE, HOOK_PATHS, HOOK_PHASES } from './hook-env.js';
import { COMPLETION_TIMEOUT_MAX_SEC_PER_GIB, PROGRESS_TIMEOUT_MAX_SEC } from './policy.js';
import { rpcName } from './ports.js';
import {
  BANDWIDTH_MAX_MIBPS,
  DiskPathSchema,
  DISKS_MAX,
  DOWNTIME_MAX_MS,
  HOOK_TIMEOUT_MAX_SEC,
  LinkSchema,
  MibSchema,
  MinorSchema,
  NameSchema,
  NICS_MAX,
  POLL_MAX_MS,
  PortSchema,
  ReasonSchema,
  SHUTDOWN_TIMEOUT_MAX_SEC,
  UuidSchema,
  VCPUS_MAX,
} from './limits.js';
import { DiskTemplateSchema, MigrationModeSchema } from './types.js';

/** The migration information a source hands to its target (a backend's serialized runtime), bytes. */
export const MIGRATION_INFO_MAX_LENGTH = 64 * 1024;
/** Hook environments: keys and value size. */
export const HOOK_ENV_MAX_KEYS = 1024;
export const HOOK_ENV_VALUE_MAX_LENGTH = 64 * 1024;

const ipv4 = z.ipv4();

export const RpcDiskSchema = z
  .object({
    index: z
      .number()
      .int()
      .nonnegative()
      .max(DISKS_MAX - 1),
    uuid: UuidSchema,
    size: MibSchema,
    template: DiskTemplateSchema,
    drbd: z
      .object({ minor: MinorSchema, peerNode: NameSchema, peerMinor: MinorSchema, peerIp: ipv4, port: PortSchema })
      .strict()
      .optional(),
    path: DiskPathSchema.optional(),
  })
  .strict();

/** domain/instance.ts RpcInstance. */
export const RpcInstanceSchema = z
  .object({
    name: NameSchema,
    uuid: UuidSchema,
    memory: MibSchema,
    vcpus: z.number().int().positive().max(VCPUS_MAX),
    bridges: z.array(LinkSchema).max(NICS_MAX),
    hvparams: z
      .object({
        migration_mode: MigrationModeSchema,
        migration_bandwidth: z.number().int().positive().max(BANDWIDTH_MAX_MIBPS),
        migration_downtime: z.number().int().positive().max(DOWNTIME_MAX_MS),
      })
      .strict(),
    disks: z.array(RpcDiskSchema).max(DISKS_MAX),
  })
  .strict()
  .refine((i) => i.disks.every((d, k) => d.index === k), { message: 'disk indices must be 0, 1, … in order', path: ['disks'] });

export const MigrationInfoSchema = z.string().min(1).max(MIGRATION_INFO_MAX_LENGTH);

export const MigrationTargetSchema = z.object({ node: NameSchema, ip: ipv4, port: PortSchema }).strict();

/** domain/ports.ts HvMigrationSettings. */
export const HvMigrationSettingsSchema = z
  .object({
    bandwidth: z.number().int().min(1).max(BANDWIDTH_MAX_MIBPS),
    downtimeMs: z.number().int().min(1).max(DOWNTIME_MAX_MS),
    autoConverge: z.boolean(),
    postcopy: z.boolean(),
  })
  .strict();

/** domain/ports.ts HvAcceptSettings. */
export const HvAcceptSettingsSchema = z.object({ postcopy: z.boolean() }).strict();

/** domain/ports.ts MigrationControl. */
export const MigrationControlSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('start-postcopy') }).strict(),
  z.object({ action: z.literal('pause-source') }).strict(),
  z.object({ action: z.literal('set-downtime'), downtimeMs: z.number().int().min(1).max(DOWNTIME_MAX_MS) }).strict(),
]);

/** The bounds `waitForMigration` enforces (activities/hypervisor.ts); 0: none. */
export const WaitForMigrationOptionsSchema = z
  .object({
    pollMs: z.number().int().positive().max(POLL_MAX_MS),
    progressMs: z.number().int().nonnegative().max(POLL_MAX_MS),
    /** The whole transfer, from its start (the first wait), seconds. */
    completionTimeoutSec: z
      .number()
      .int()
      .nonnegative()
      .max(COMPLETION_TIMEOUT_MAX_SEC_PER_GIB * 16 * 1024)
      .optional(),
    /** No decrease of the remaining bytes for this long, seconds. */
    progressTimeoutSec: z.number().int().nonnegative().max(PROGRESS_TIMEOUT_MAX_SEC).optional(),
  })
  .strict();

export const HookEnvSchema = z
  .record(
    z.string().regex(HOOK_ENV_KEY_RE, 'hook environment keys must be GANETI_[A-Z0-9_]+ (Ganeti hook keys only)'),
    z
      .string()
      .max(HOOK_ENV_VALUE_MAX_LENGTH)
      .refine((v) => !v.includes('\0'), 'must not contain NUL'),
  )
  .refine((env) => Object.keys(env).length <= HOOK_ENV_MAX_KEYS, `at most ${HOOK_ENV_MAX_KEYS} keys`);

export const RunHooksRequestSchema = z
  .object({
    path: z.enum(HOOK_PATHS),
    phase: z.enum(HOOK_PHASES),
    env: HookEnvSchema,
    timeoutSec: z.number().positive().max(HOOK_TIMEOUT_MAX_SEC),
  })
  .strict();

const pollMs = z.number().int().positive().max(POLL_MAX_MS);
const inst = RpcInstanceSchema;
const none = z.tuple([]);

/**
 * Per node activity, the schema of its argument list. Every node activity has one (a unit test and
 * the type below hold that), and a tuple refuses extra arguments.
 */
export const NODE_RPC_ARGS = {
  nodeInfo: none,
  instanceList: none,
  instanceInfo: z.tuple([inst]),
  bridgesExist: z.tuple([z.array(LinkSchema).max(NICS_MAX)]),
  instanceMigratable: z.tuple([inst]),
  migrationInfo: z.tuple([inst]),
  acceptInstance: z.tuple([inst, MigrationInfoSchema, ipv4, HvAcceptSettingsSchema.optional()]),
  instanceMigrate: z.tuple([inst, MigrationTargetSchema, z.boolean(), HvMigrationSettingsSchema.optional()]),
  instanceGetMigrationStatus: z.tuple([inst]),
  instanceMigrationControl: z.tuple([inst, MigrationControlSchema]),
  instanceFinalizeMigrationSrc: z.tuple([inst, z.boolean(), z.boolean()]),
  instanceFinalizeMigrationDst: z.tuple([inst, MigrationInfoSchema, z.boolean()]),
  instanceBalloonMemory: z.tuple([inst, MibSchema]),
  instanceShutdown: z.tuple([inst, z.number().nonnegative().max(SHUTDOWN_TIMEOUT_MAX_SEC), ReasonSchema]),
  instanceStart: z.tuple([inst, ReasonSchema]),
  blockdevFind: z.tuple([
    inst,
    z
      .number()
      .int()
      .nonnegative()
      .max(DISKS_MAX - 1),
  ]),
  blockdevClose: z.tuple([inst]),
  blockdevOpen: z.tuple([inst, z.boolean()]),
  blockdevShutdown: z.tuple([inst]),
  blockdevAssemble: z.tuple([inst, z.boolean()]),
  drbdDisconnectNet: z.tuple([inst]),
  drbdAttachNet: z.tuple([inst, z.boolean()]),
  drbdWaitSync: z.tuple([inst]),
  waitForDiskSync: z.tuple([inst, z.object({ pollMs }).strict()]),
  waitForMigration: z.tuple([inst, WaitForMigrationOptionsSchema]),
  runHooks: z.tuple([RunHooksRequestSchema]),
} as const satisfies Record<string, z.ZodType<unknown[]>>;

export type NodeRpcActivityName = keyof typeof NODE_RPC_ARGS;

/** Node activities that are not one Ganeti RPC (they loop over one, or run the hooks). */
const COMPOSITE: readonly NodeRpcActivityName[] = ['waitForDiskSync', 'waitForMigration', 'runHooks'];

/** Ganeti's names of the node RPCs (`blockdev_open`, …, `hooks_runner`): what a fault can address. */
export const NODE_RPC_NAMES: readonly string[] = [
  ...(Object.keys(NODE_RPC_ARGS) as NodeRpcActivityName[]).filter((k) => !COMPOSITE.includes(k)).map(rpcName),
  'hooks_runner',
].sort();

/** Renders the issues of a refused argument list as one line (`arg 0: name: …`). */
export function describeRpcInputError(err: z.ZodError): string {
  return err.issues
    .map((i) => {
      const [first, ...rest] = i.path;
      const where = typeof first === 'number' ? [`argument ${first}`, ...rest.map(String)] : i.path.map(String);
      // A refused record key (a hook environment key) says why in its nested issues.
      const nested = i.code === 'invalid_key' ? i.issues.map((n) => n.message).join(', ') : '';
      const message = nested ? `${i.message}: ${nested}` : i.message;
      return where.length ? `${where.join('.')}: ${message}` : message;
    })
    .join('; ');
}
