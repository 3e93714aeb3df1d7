/**
 * Ganeti's RPC timeout classes (lib/rpc_defs.py; docs/behaviour.md §12 "Timeouts and intervals"), one
 * entry per node RPC: the start-to-close cap of every call. The seconds of each class are cluster
 * timing (`cluster.timing.rpcTimeouts`).
 */
import type { NodeRpcMethod } from './ports.js';

export const RPC_CLASSES = ['urgent', 'normal', 'slow'] as const;
export type RpcClass = (typeof RPC_CLASSES)[number];

/** The node activity that runs hook scripts (Ganeti's `hooks_runner` RPC). */
export type HooksRpc = 'runHooks';

export const RPC_TIMEOUT_CLASS = {
  nodeInfo: 'urgent',
  instanceList: 'urgent',
  instanceInfo: 'urgent',
  bridgesExist: 'urgent',
  instanceMigratable: 'normal',
  migrationInfo: 'normal',
  acceptInstance: 'normal',
  instanceMigrate: 'slow',
  instanceGetMigrationStatus: 'slow',
  instanceMigrationControl: 'normal',
  instanceFinalizeMigrationSrc: 'slow',
  instanceFinalizeMigrationDst: 'normal',
  instanceBalloonMemory: 'normal',
  instanceShutdown: 'normal',
  instanceStart: 'normal',
  blockdevFind: 'normal',
  blockdevClose: 'normal',
  blockdevOpen: 'normal',
  blockdevShutdown: 'normal',
  blockdevAssemble: 'normal',
  drbdDisconnectNet: 'normal',
  drbdAttachNet: 'normal',
  drbdWaitSync: 'slow',
  runHooks: 'normal',
} as const satisfies Record<NodeRpcMethod | HooksRpc, RpcClass>;

export type TimedRpc = keyof typeof RPC_TIMEOUT_CLASS;
