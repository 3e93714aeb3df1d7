/**
 * The plain constants and helpers of the cluster model (domain/types.ts), without zod: what the
 * workflows use of the model, so that the workflow bundle builds no zod schema per workflow (every
 * workflow evaluates the bundle's modules anew; zod and the schemas cost about 1 MiB of heap and
 * several ms each). domain/types.ts re-exports them.
 */
import type { DiskTemplate, DrbdLogicalId } from './types.js';

export const DISK_TEMPLATES = ['drbd', 'sharedfile', 'plain', 'file'] as const;

/** Ganeti's mirroring classes (constants.DTS_INT_MIRROR / DTS_EXT_MIRROR). */
export const INT_MIRROR_TEMPLATES: readonly DiskTemplate[] = ['drbd'];
export const EXT_MIRROR_TEMPLATES: readonly DiskTemplate[] = ['sharedfile'];

export const MIGRATION_MODES = ['live', 'non-live'] as const;

export const ADMIN_STATES = ['up', 'down', 'offline'] as const;

/** One of the two sides of a DRBD pair. */
export type DrbdSide = 0 | 1;
export const otherSide = (side: DrbdSide): DrbdSide => (side === 0 ? 1 : 0);
/** The side `node` is on, or null when it holds neither. */
export function sideOf(drbd: DrbdLogicalId, node: string): DrbdSide | null {
  return drbd.nodes[0] === node ? 0 : drbd.nodes[1] === node ? 1 : null;
}

/** Default of `cluster.timing.rpcHeartbeatTimeoutSec` (also for histories recorded before it existed). */
export const DEFAULT_RPC_HEARTBEAT_TIMEOUT_SEC = 15;

export const EVACUATION_LIMIT_MAX = 1000;
/** The cluster's evacuation limits when it sets none (domain/types.ts EvacuationLimitsSchema). */
export const EVACUATION_DEFAULTS = { maxConcurrent: 5, maxOutgoing: 2, maxIncoming: 2 } as const;
