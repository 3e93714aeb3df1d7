/**
 * Node-agent activities for block devices and DRBD (Ganeti's blockdev_* and drbd_* RPCs), plus the
 * long wait for resync as one heartbeating activity.
 */
import { Context } from '@temporalio/activity';
import type { SyncSample } from '../domain/feedback.js';
import type { RpcInstance } from '../domain/instance.js';
import type { NodeRpc } from '../domain/ports.js';

export interface DiskActivityDeps {
  rpc: NodeRpc;
}

/** Heartbeat details of `waitForDiskSync` (also its resume point after a retry). */
export interface SyncHeartbeat {
  phase: 'resync';
  node: string;
  percent: number;
  samples: SyncSample[];
}

export interface WaitForDiskSyncResult {
  node: string;
  samples: SyncSample[];
}

const MAX_SAMPLES = 200;

export function createDiskActivities({ rpc }: DiskActivityDeps) {
  return {
    blockdevFind: (inst: RpcInstance, diskIndex: number) => rpc.blockdevFind(inst, diskIndex),
    blockdevClose: (inst: RpcInstance) => rpc.blockdevClose(inst),
    blockdevOpen: (inst: RpcInstance, exclusive: boolean) => rpc.blockdevOpen(inst, exclusive),
    blockdevShutdown: (inst: RpcInstance) => rpc.blockdevShutdown(inst),
    blockdevAssemble: (inst: RpcInstance, asPrimary: boolean) => rpc.blockdevAssemble(inst, asPrimary),
    drbdDisconnectNet: (inst: RpcInstance) => rpc.drbdDisconnectNet(inst),
    drbdAttachNet: (inst: RpcInstance, multimaster: boolean) => rpc.drbdAttachNet(inst, multimaster),
    drbdWaitSync: (inst: RpcInstance) => rpc.drbdWaitSync(inst),

    /**
     * Ganeti's `_WaitUntilSync` for this node: repeats drbd_wait_sync every `pollMs` until no device
     * is resyncing. Progress goes into the heartbeat details, not into history; a retried attempt
     * resumes its sample list from the last heartbeat (the RPC itself is read-only).
     */
    async waitForDiskSync(inst: RpcInstance, opts: { pollMs: number }): Promise<WaitForDiskSyncResult> {
      const ctx = Context.current();
      const prev = ctx.info.heartbeatDetails as SyncHeartbeat | undefined;
      const samples: SyncSample[] = prev?.samples ?? [];
      for (;;) {
        const r = await rpc.drbdWaitSync(inst);
        if (r.allDone) {
          ctx.heartbeat({ phase: 'resync', node: rpc.node, percent: 100, samples } satisfies SyncHeartbeat);
          return { node: rpc.node, samples };
        }
        samples.push({ at: Date.now(), percent: r.minPercent });
        if (samples.length > MAX_SAMPLES) samples.splice(0, samples.length - MAX_SAMPLES);
        ctx.heartbeat({ phase: 'resync', node: rpc.node, percent: r.minPercent, samples } satisfies SyncHeartbeat);
        await ctx.sleep(opts.pollMs);
      }
    },
  };
}
