/**
 * A node agent: a Temporal worker on the node's own task queue executing that node's RPCs, as
 * Ganeti's node daemon does. The backend is chosen per agent (`sim` today).
 */
import { Context } from '@temporalio/activity';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { createNodeActivities } from '../activities/index.js';
import { nodeQueue } from '../cluster/naming.js';
import type { NodeRpc } from '../cluster/ports.js';
import { withFaults } from '../cluster/sim/faults.js';
import { SimHardware } from '../cluster/sim/hardware.js';
import { SimNode } from '../cluster/sim/node.js';

export const BACKENDS = ['sim'] as const;
export type Backend = (typeof BACKENDS)[number];

/** The simulated node, behind the fault-injection table; a hanging fault waits for cancellation. */
export function simBackend(home: string, node: string): NodeRpc {
  const hw = SimHardware.forHome(home);
  return withFaults(new SimNode(hw, node), hw, { hang: () => Context.current().cancelled });
}

export interface NodeAgentOptions {
  connection: NativeConnection;
  namespace: string;
  cluster: string;
  node: string;
  rpc: NodeRpc;
  workerOptions?: Partial<WorkerOptions>;
}

export async function createNodeAgent(o: NodeAgentOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: nodeQueue(o.cluster, o.node),
    identity: `node-agent@${o.node}/${process.pid}`,
    activities: createNodeActivities({ rpc: o.rpc }),
    // Long waits heartbeat; give them time to checkpoint before a shutdown cancels them.
    shutdownGraceTime: '5s',
    ...o.workerOptions,
  });
}
