/**
 * Orchestrator activities over the cluster configuration store: the snapshot every operation starts
 * from, the atomic memory reservation, and the configuration writes (the commit points).
 */
import { Context } from '@temporalio/activity';
import type { ConfigStore, SlotAnswer } from '../domain/ports.js';
import { instanceWithoutSecrets, snapshotWithoutSecrets } from '../domain/secrets.js';
import { sliceNodes, sliceScope, type SliceRequest } from '../domain/slices.js';
import type { AdminState, ClusterSnapshot, EvacuationLimits, Instance, Node } from '../domain/types.js';

export interface ConfigActivityDeps {
  config: ConfigStore;
}

/** One reservation per workflow run. */
function opId(): { opId: string; workflowId: string; runId: string } {
  const exec = Context.current().info.workflowExecution;
  if (!exec) throw new Error('memory reservations belong to a workflow run');
  const { workflowId, runId } = exec;
  return { opId: `${workflowId}@${runId}`, workflowId, runId };
}

export function createConfigActivities({ config }: ConfigActivityDeps) {
  return {
    /**
     * The configuration an operation starts from, without the DRBD secrets: it is recorded in the
     * history. `slice` names what the operation acts on (domain/slices.ts); without it (executions
     * started before slices) everything. The memory reservations of runs that are gone are dropped on
     * the nodes of the slice (the memory the operation's checks subtract is reserved there).
     */
    loadClusterSnapshot: async (slice?: SliceRequest): Promise<ClusterSnapshot> => {
      if (!slice) {
        await config.pruneReservations();
        return snapshotWithoutSecrets(await config.snapshot());
      }
      const snap = sliceNodes(await config.snapshot(sliceScope(slice)), slice);
      await config.pruneReservations(Object.keys(snap.nodes));
      return snapshotWithoutSecrets(snap);
    },

    /** Memory other running operations have reserved, per node. */
    reservedMemory: (): Promise<Record<string, number>> => config.reservedMemory(opId().opId),

    reserveTargetMemory: (req: { node: string; instance: string; needed: number; wanted: number; reportedFree: number }) =>
      config.reserveMemory({ ...req, ...opId() }),

    releaseTargetMemory: (): Promise<void> => config.releaseReservation(opId().opId),

    /** The commit point of a migration or failover: primary := target (compare-and-set, idempotent). */
    setInstancePrimary: async (req: { instance: string; expected: string; primary: string }): Promise<Instance> =>
      instanceWithoutSecrets(await config.setInstancePrimary(req.instance, req.expected, req.primary)),

    setDisksActive: async (req: { instance: string; active: boolean }): Promise<Instance> =>
      instanceWithoutSecrets(await config.setDisksActive(req.instance, req.active)),

    /** Ganeti's MarkInstanceUp / MarkInstanceDown (instance start and shutdown). */
    setAdminState: async (req: { instance: string; state: Exclude<AdminState, 'offline'> }): Promise<Instance> =>
      instanceWithoutSecrets(await config.modifyInstance(req.instance, { adminState: req.state })),

    /** `node migrate --drain`: nothing new is placed on the node (idempotent). */
    setNodeDrained: (req: { node: string; drained: boolean }): Promise<Node> => config.modifyNode(req.node, { drained: req.drained }),

    /** An evacuation slot for one instance of this node operation, under the limits across the cluster. */
    acquireEvacuationSlot: (req: {
      instance: string;
      source: string;
      target: string | null;
      limits: EvacuationLimits;
    }): Promise<SlotAnswer> => {
      const { opId: id, workflowId, runId } = opId();
      return config.acquireSlot({ ...req, id: `${id}/${req.instance}`, workflowId, runId });
    },

    releaseEvacuationSlot: (req: { instance: string }): Promise<void> => config.releaseSlot(`${opId().opId}/${req.instance}`),

    /** The memory reservations of running operations (a node operation places instances with them). */
    memoryReservations: async (): Promise<Array<{ node: string; memory: number; workflowId: string }>> =>
      Object.values(await config.reservations()).map((r) => ({ node: r.node, memory: r.memory, workflowId: r.workflowId })),
  };
}
