/**
 * The bounds every input is held to, on both sides of the trust boundary (docs/architecture.md,
 * "The trust boundary"): the client and the workflows validate operation inputs with them, the
 * configuration schema holds the cluster model to them, and the node agents validate every RPC
 * argument with them (domain/rpc-schemas.ts). One definition, so what the orchestrator sends always
 * passes the agent's check.
 */
import { z } from 'zod';
import { DISK_PATH_RE, MEMORY_MAX_MIB, NAME_MAX_LENGTH, NAME_RE, PORT_MAX, REASON_MAX_LENGTH } from './bounds.js';

/** The bounds themselves (plain numbers and patterns, no zod): domain/bounds.ts. */
export * from './bounds.js';

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

export const DiskPathSchema = z
  .string()
  .max(255)
  .regex(DISK_PATH_RE, 'must be a relative path inside the storage directory (no "..", no leading "/")');

export const MibSchema = z.number().int().nonnegative().max(MEMORY_MAX_MIB);
export const ReasonSchema = z.string().max(REASON_MAX_LENGTH, `must be at most ${REASON_MAX_LENGTH} characters`);
export const PortSchema = z.number().int().min(1).max(PORT_MAX);
/** DRBD minors (DRBD 8.4: 2^20). */
export const MinorSchema = z.number().int().nonnegative().max(1_048_575);
