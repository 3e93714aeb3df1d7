/**
 * The cluster model: nodes, instances, disks and the cluster-wide parameters, as zod schemas.
 *
 * Pure data (JSON only): these objects travel as workflow and activity payloads and are what the
 * config store persists. Ganeti parameter names (`migration_mode`, `always_failover`, ...) are kept
 * inside `hvparams` / `beparams` because they are the names operators and hooks know.
 */
import { z } from 'zod';
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
  UuidSchema,
  VCPUS_MAX,
} from './limits.js';
import {
  ADMIN_STATES,
  DEFAULT_RPC_HEARTBEAT_TIMEOUT_SEC,
  DISK_TEMPLATES,
  EVACUATION_DEFAULTS,
  EVACUATION_LIMIT_MAX,
  MIGRATION_MODES,
} from './model.js';
import { ClusterMigrationPolicySchema, MigrationCapsSchema } from './policy.js';

/** Names, UUIDs, links, disk paths and numbers are bounded by domain/limits.ts (the node agents check the same). */
export { NAME_MAX_LENGTH, NAME_RE } from './limits.js';
/** The model's plain constants and helpers (no zod; the workflows import them from domain/model.ts). */
export {
  ADMIN_STATES,
  DEFAULT_RPC_HEARTBEAT_TIMEOUT_SEC,
  DISK_TEMPLATES,
  EVACUATION_LIMIT_MAX,
  EXT_MIRROR_TEMPLATES,
  INT_MIRROR_TEMPLATES,
  MIGRATION_MODES,
  otherSide,
  sideOf,
  type DrbdSide,
} from './model.js';
const name = NameSchema;
const uuid = UuidSchema;
const ipv4 = z.ipv4();
const mib = MibSchema;

export const DiskTemplateSchema = z.enum(DISK_TEMPLATES);
export type DiskTemplate = z.infer<typeof DiskTemplateSchema>;

export const MigrationModeSchema = z.enum(MIGRATION_MODES);
export type MigrationMode = z.infer<typeof MigrationModeSchema>;

export const AdminStateSchema = z.enum(ADMIN_STATES);
export type AdminState = z.infer<typeof AdminStateSchema>;

export const NodeSchema = z.object({
  name,
  uuid,
  primaryIp: ipv4,
  /** The replication network address; migration and DRBD traffic use it. */
  secondaryIp: ipv4,
  offline: z.boolean().default(false),
  drained: z.boolean().default(false),
  vmCapable: z.boolean().default(true),
  group: name.default('default'),
  /** Physical memory (MiB). Free memory is measured live by `node_info`. */
  memoryTotal: mib,
  hvVersion: z.string().min(1),
});
export type Node = z.infer<typeof NodeSchema>;

/** One side of a DRBD disk: the node and the minor it uses there. */
export const DrbdLogicalIdSchema = z.object({
  nodes: z.tuple([name, name]),
  minors: z.tuple([MinorSchema, MinorSchema]),
  port: PortSchema,
  /**
   * Ganeti's shared secret of the DRBD link. The stored configuration has it (ClusterConfigSchema
   * requires it); no node RPC needs it, so what the workflows get of the configuration — the
   * snapshot, the instances the configuration activities return — is stripped of it
   * (domain/secrets.ts) and no history holds it.
   */
  secret: z.string().min(1).max(256).optional(),
});
export type DrbdLogicalId = z.infer<typeof DrbdLogicalIdSchema>;

export const DiskSchema = z.object({
  uuid,
  name: z.string().optional(),
  size: mib.describe('MiB'),
  mode: z.enum(['rw', 'ro']).default('rw'),
  /** Only for the `drbd` template. */
  drbd: DrbdLogicalIdSchema.optional(),
  /** Only for `sharedfile`/`file`: the image path (relative to the shared storage directory). */
  path: DiskPathSchema.optional(),
});
export type Disk = z.infer<typeof DiskSchema>;

export const NIC_MODES = ['bridged', 'routed', 'openvswitch'] as const;
export const NicSchema = z.object({
  uuid,
  name: z.string().optional(),
  mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
  ip: ipv4.optional(),
  mode: z.enum(NIC_MODES).default('bridged'),
  /** The bridge for bridged/openvswitch NICs, the routing table for routed ones. */
  link: LinkSchema,
  vlan: z.string().default(''),
});
export type Nic = z.infer<typeof NicSchema>;

export const BeParamsSchema = z.object({
  minmem: mib,
  maxmem: mib,
  vcpus: z.number().int().positive().max(VCPUS_MAX),
  always_failover: z.boolean().default(false),
  auto_balance: z.boolean().default(true),
});
export type BeParams = z.infer<typeof BeParamsSchema>;

/** Per-instance hypervisor parameters; missing ones are filled from the cluster defaults. */
export const HvParamsSchema = z.object({
  migration_mode: MigrationModeSchema.optional(),
  /** MiB/s. */
  migration_bandwidth: z.number().int().positive().max(BANDWIDTH_MAX_MIBPS).optional(),
  /** ms. */
  migration_downtime: z.number().int().positive().max(DOWNTIME_MAX_MS).optional(),
  /**
   * Ganeti's KVM `migration_caps`: QEMU migration capabilities, ':'-separated ("auto-converge:postcopy-ram").
   * Read by the migration policy (domain/policy.ts) only; not sent to the nodes with the instance.
   */
  migration_caps: MigrationCapsSchema.optional(),
});
export type HvParams = z.infer<typeof HvParamsSchema>;
/** The hvparams every node RPC carries with the instance, filled from the cluster's. */
export type FilledHvParams = { [K in Exclude<keyof HvParams, 'migration_caps'>]-?: NonNullable<HvParams[K]> };

export const InstanceSchema = z
  .object({
    name,
    uuid,
    hypervisor: z.literal('kvm').default('kvm'),
    os: z.string().default('debootstrap+default'),
    diskTemplate: DiskTemplateSchema,
    primaryNode: name,
    disks: z.array(DiskSchema).max(DISKS_MAX),
    adminState: AdminStateSchema,
    /** Ganeti's `disks_active`: the disks are assembled (set by start/activate-disks). */
    disksActive: z.boolean(),
    /** A forthcoming instance exists only in the configuration. */
    forthcoming: z.boolean().default(false),
    beparams: BeParamsSchema,
    hvparams: HvParamsSchema.default({}),
    nics: z.array(NicSchema).max(NICS_MAX).default([]),
    tags: z.array(z.string()).default([]),
  })
  .superRefine((inst, ctx) => {
    if (inst.beparams.minmem > inst.beparams.maxmem) {
      ctx.addIssue({ code: 'custom', message: 'minmem must not exceed maxmem', path: ['beparams'] });
    }
    inst.disks.forEach((d, i) => {
      if (inst.diskTemplate === 'drbd') {
        if (!d.drbd) ctx.addIssue({ code: 'custom', message: 'drbd disk without logical id', path: ['disks', i] });
        else if (!d.drbd.nodes.includes(inst.primaryNode) || d.drbd.nodes[0] === d.drbd.nodes[1]) {
          ctx.addIssue({
            code: 'custom',
            message: 'drbd disk must span the primary and one distinct secondary',
            path: ['disks', i],
          });
        }
      } else if (d.drbd) {
        ctx.addIssue({ code: 'custom', message: `${inst.diskTemplate} disk with a drbd logical id`, path: ['disks', i] });
      }
    });
  });
export type Instance = z.infer<typeof InstanceSchema>;

export const IPolicySchema = z.object({
  minmem: mib.default(0),
  maxmem: mib.default(1024 * 1024),
  maxVcpus: z.number().int().positive().default(64),
  diskTemplates: z.array(DiskTemplateSchema).default([...DISK_TEMPLATES]),
});
export type IPolicy = z.infer<typeof IPolicySchema>;

export const NodeGroupSchema = z.object({
  name,
  ipolicy: IPolicySchema.default(IPolicySchema.parse({})),
});
export type NodeGroup = z.infer<typeof NodeGroupSchema>;

/** Ganeti's RPC timeout classes (seconds); docs/behaviour.md §12 "Timeouts and intervals". */
export const RpcTimeoutsSchema = z.object({
  urgent: z.number().positive().default(60),
  normal: z.number().positive().default(900),
  slow: z.number().positive().default(3600),
});

/**
 * Orchestration timing. Defaults are Ganeti's values; tests shrink them. They are read from the
 * config store by the workflow's first activity, so they are part of the recorded history.
 */
export const TimingSchema = z.object({
  rpcTimeouts: RpcTimeoutsSchema.default(RpcTimeoutsSchema.parse({})),
  /** Heartbeat timeout of the long, heartbeating waits (resync, memory transfer). */
  heartbeatTimeoutSec: z.number().positive().default(30),
  /**
   * Heartbeat timeout of every other node RPC: the node agent heartbeats while an RPC runs, so a dead
   * agent is noticed after this long and the RPC is retried on its replacement (the RPC timeout class
   * stays the overall cap of one attempt).
   */
  rpcHeartbeatTimeoutSec: z.number().positive().default(DEFAULT_RPC_HEARTBEAT_TIMEOUT_SEC),
  /** How long an RPC may wait for its node agent to pick it up before it counts as unreachable. */
  scheduleToStartSec: z.number().positive().default(300),
  retryInitialIntervalMs: z.number().int().positive().default(1000),
  retryMaximumIntervalMs: z.number().int().positive().default(30_000),
  retryMaximumAttempts: z.number().int().positive().default(5),
  /** Master migration status poll (Ganeti: 1 s). */
  migrationPollMs: z.number().int().positive().max(POLL_MAX_MS).default(1000),
  /** Interval of "* memory transfer progress" lines (Ganeti: 10 s). */
  migrationProgressMs: z.number().int().positive().max(POLL_MAX_MS).default(10_000),
  /** Master wait-sync round (Ganeti: 2 s). */
  syncPollMs: z.number().int().positive().max(POLL_MAX_MS).default(2000),
  /** Per-script hook timeout (Ganeti has none; its hooks RPC times out after 15 min). */
  hookTimeoutSec: z.number().positive().max(HOOK_TIMEOUT_MAX_SEC).default(300),
});
export type Timing = z.infer<typeof TimingSchema>;

/** Evacuation limits (`node migrate` / `node failover`), overridable per call. */
const limit = z.number().int().min(1).max(EVACUATION_LIMIT_MAX);
export const EvacuationLimitsSchema = z.object({
  /** At most this many instance operations of one node operation at once (C). */
  maxConcurrent: limit.default(EVACUATION_DEFAULTS.maxConcurrent),
  /** At most this many leaving one source node at once (O). */
  maxOutgoing: limit.default(EVACUATION_DEFAULTS.maxOutgoing),
  /** At most this many arriving on one target node at once (I). */
  maxIncoming: limit.default(EVACUATION_DEFAULTS.maxIncoming),
});
export type EvacuationLimits = z.infer<typeof EvacuationLimitsSchema>;

export const ClusterSchema = z.object({
  name,
  uuid,
  masterNode: name,
  /** Cluster-level hypervisor defaults (KVM: live, 32 MiB/s, 30 ms). */
  hvparams: z
    .object({
      migration_mode: MigrationModeSchema.default('live'),
      migration_bandwidth: z.number().int().positive().max(BANDWIDTH_MAX_MIBPS).default(32),
      migration_downtime: z.number().int().positive().max(DOWNTIME_MAX_MS).default(30),
    })
    .default({ migration_mode: 'live', migration_bandwidth: 32, migration_downtime: 30 }),
  /** The default allocator used for externally mirrored instances without a target node. */
  defaultIallocator: z.enum(['hail']).nullable().default('hail'),
  groups: z.record(z.string(), NodeGroupSchema).default({}),
  timing: TimingSchema.default(TimingSchema.parse({})),
  evacuation: EvacuationLimitsSchema.default(EvacuationLimitsSchema.parse({})),
  /**
   * Migration policy defaults for what is not a Ganeti hvparam (domain/policy.ts). Snapshots recorded
   * before it existed have none: the policy then resolves to the defaults.
   */
  migrationPolicy: ClusterMigrationPolicySchema.default(ClusterMigrationPolicySchema.parse({})),
});
export type Cluster = z.infer<typeof ClusterSchema>;

export const ReservationSchema = z.object({
  node: name,
  memory: mib,
  instance: name,
  workflowId: z.string(),
  runId: z.string(),
});
export type Reservation = z.infer<typeof ReservationSchema>;

/**
 * A running instance operation of a node operation, counted against the evacuation limits across the
 * cluster (runtime state, like the reservations). Held by the node operation's run; dropped once that
 * run no longer runs.
 */
export const SlotLeaseSchema = z.object({
  workflowId: z.string(),
  runId: z.string(),
  instance: name,
  source: name,
  target: name.nullable(),
});
export type SlotLease = z.infer<typeof SlotLeaseSchema>;

/** The whole persisted configuration (Ganeti's config.data). */
export const ClusterConfigSchema = z
  .object({
    version: z.literal(1),
    serial: z.number().int().nonnegative(),
    cluster: ClusterSchema,
    nodes: z.record(z.string(), NodeSchema),
    instances: z.record(z.string(), InstanceSchema),
    /** Target-memory reservations of running operations, keyed by an operation id (runtime state: no serial bump). */
    reservations: z.record(z.string(), ReservationSchema).default({}),
    /** Evacuation slots of running node operations, keyed by lease id (runtime state: no serial bump). */
    leases: z.record(z.string(), SlotLeaseSchema).default({}),
  })
  .superRefine((cfg, ctx) => {
    for (const [name, inst] of Object.entries(cfg.instances)) {
      inst.disks.forEach((d, i) => {
        if (d.drbd && !d.drbd.secret)
          ctx.addIssue({ code: 'custom', message: 'drbd disk without its secret', path: ['instances', name, 'disks', i, 'drbd'] });
      });
    }
  });
export type ClusterConfig = z.infer<typeof ClusterConfigSchema>;

/** What a workflow sees of the configuration: the config without reservations and leases. */
export type ClusterSnapshot = Omit<ClusterConfig, 'reservations' | 'leases'>;
