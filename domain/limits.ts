/**
 * The bounds every input is held to, on both sides of the trust boundary (docs/architecture.md,
 * "The trust boundary"): the client and the workflows validate operation inputs with them, the
 * configuration schema holds the cluster model to them, and the node agents validate every RPC
 * argument with them (domain/rpc-schemas.ts). One definition, so what the orchestrator sends always
 * passes the agent's check.
 */
import { z } from 'zod';

/**
 * Instance, node, group and cluster names. Ganeti's rule (netutils.Hostname.GetNormalizedName):
 * letters, digits, ".", "_" and "-", no empty label (".."), not starting with "."; here also not
 * starting with "_" or "-". The length bound keeps a QEMU monitor socket path
 * (`<state dir>/<node>/<instance>.qmp`, at most 107 bytes) and a workflow ID short.
 */
export const NAME_MAX_LENGTH = 40;
export const NAME_RE = /^(?!.*\.\.)[a-zA-Z0-9][a-zA-Z0-9._-]*$/;
export const NameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(NAME_MAX_LENGTH, `must be at most ${NAME_MAX_LENGTH} characters`)
  .regex(NAME_RE, 'must be a host-style name (letters, digits, ".", "_", "-"; no "..")');

/** Object UUIDs (Ganeti's are RFC 4122; the simulated cluster uses `inst-1`, `disk-1-0`, …). */
export const UuidSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]*$/, 'must be letters, digits, ".", "_" and "-"');

/** A NIC's link: the bridge (bridged, openvswitch) or the routing table (routed). */
export const LinkSchema = z
  .string()
  .min(1)
  .max(32)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.:-]*$/, 'must be an interface or routing table name');

/**
 * A file-backed disk's image path, relative to the node's storage directory: segments of letters,
 * digits, ".", "_" and "-" that start with a letter, digit or "_" — so no absolute path, no "." or
 * ".." segment, nothing outside the directory.
 */
export const DISK_PATH_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]*(?:\/[a-zA-Z0-9_][a-zA-Z0-9._-]*)*$/;
export const DiskPathSchema = z
  .string()
  .max(255)
  .regex(DISK_PATH_RE, 'must be a relative path inside the storage directory (no "..", no leading "/")');

/** Memory, MiB (16 TiB). */
export const MEMORY_MAX_MIB = 16 * 1024 * 1024;
export const MibSchema = z.number().int().nonnegative().max(MEMORY_MAX_MIB);
export const VCPUS_MAX = 1024;
export const DISKS_MAX = 64;
export const NICS_MAX = 64;
/** Migration bandwidth, MiB/s. */
export const BANDWIDTH_MAX_MIBPS = 1024 * 1024;
/** Migration downtime, ms (QEMU's own limit is 2000 s). */
export const DOWNTIME_MAX_MS = 2_000_000;
/** A failover's soft-shutdown time, seconds (one day). */
export const SHUTDOWN_TIMEOUT_MAX_SEC = 86_400;
/** A hook script's timeout, seconds (one day). */
export const HOOK_TIMEOUT_MAX_SEC = 86_400;
/** Poll and progress intervals of the long waits, ms (one hour). */
export const POLL_MAX_MS = 3_600_000;
/** Reasons recorded with an operation, passed to shutdown/start, or given with an abort. */
export const REASON_MAX_LENGTH = 1000;
export const ReasonSchema = z.string().max(REASON_MAX_LENGTH, `must be at most ${REASON_MAX_LENGTH} characters`);
export const PORT_MAX = 65_535;
export const PortSchema = z.number().int().min(1).max(PORT_MAX);
/** DRBD minors (DRBD 8.4: 2^20). */
export const MinorSchema = z.number().int().nonnegative().max(1_048_575);
