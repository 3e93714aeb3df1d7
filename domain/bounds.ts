/**
 * The numeric and pattern bounds of domain/limits.ts as plain values, without zod: what the
 * workflows' input checks (domain/input-check.ts) use, so that the workflow bundle builds no zod
 * schema per workflow. domain/limits.ts re-exports them and builds its schemas from them.
 */
/**
 * Instance, node, group and cluster names. Ganeti's rule (netutils.Hostname.GetNormalizedName):
 * letters, digits, ".", "_" and "-", no empty label (".."), not starting with "."; here also not
 * starting with "_" or "-". The length bound keeps a QEMU monitor socket path
 * (`<state dir>/<node>/<instance>.qmp`, at most 107 bytes) and a workflow ID short.
 */
export const NAME_MAX_LENGTH = 40;
export const NAME_RE = /^(?!.*\.\.)[a-zA-Z0-9][a-zA-Z0-9._-]*$/;
/**
 * A file-backed disk's image path, relative to the node's storage directory: segments of letters,
 * digits, ".", "_" and "-" that start with a letter, digit or "_" — so no absolute path, no "." or
 * ".." segment, nothing outside the directory.
 */
export const DISK_PATH_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]*(?:\/[a-zA-Z0-9_][a-zA-Z0-9._-]*)*$/;
/** Memory, MiB (16 TiB). */
export const MEMORY_MAX_MIB = 16 * 1024 * 1024;
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
export const PORT_MAX = 65_535;
