/**
 * A node agent: a Temporal worker on the node's own task queue executing that node's RPCs, as
 * Ganeti's node daemon does. The backend is chosen per agent (worker/backends.ts).
 */
import { join } from 'node:path';
import type { DataConverter } from '@temporalio/common';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { createNodeActivities, SELF_HEARTBEATING } from '../activities/index.js';
import { DirectoryHookRunner } from '../adapters/hooks/runner.js';
import type { HookRunner } from '../domain/ports.js';
import { nodeQueue } from '../domain/naming.js';
import type { NodeRpc } from '../domain/ports.js';
import { withSimHooks } from '../adapters/sim/faults.js';
import { heartbeatInterceptor } from './heartbeat.js';
import { SimHardware } from '../adapters/sim/hardware.js';

export { BACKENDS, createBackend, simBackend, type Backend } from './backends.js';

/** The simulated cluster's default hooks directory for a node: `$GANETI_TEMPORAL_HOME/nodes/<node>/hooks`. */
export const simHooksDir = (home: string, node: string): string => join(home, 'nodes', node, 'hooks');

export function directoryHooks(hooksDir: string, dataDir: string): HookRunner {
  return new DirectoryHookRunner(hooksDir, dataDir);
}

/** Hooks of a simulated node: real scripts from its hooks directory, behind the node's power state and faults. */
export function simHooks(home: string, node: string, hooksDir = simHooksDir(home, node)): HookRunner {
  return withSimHooks(directoryHooks(hooksDir, home), SimHardware.forHome(home), node);
}

export interface NodeAgentOptions {
  connection: NativeConnection;
  namespace: string;
  cluster: string;
  node: string;
  rpc: NodeRpc;
  hooks: HookRunner;
  /** The payload codec (connection/codec.ts); the worker commands always pass the cluster's. */
  dataConverter?: DataConverter;
  workerOptions?: Partial<WorkerOptions>;
}

export async function createNodeAgent(o: NodeAgentOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: nodeQueue(o.cluster, o.node),
    identity: `node-agent@${o.node}/${process.pid}`,
    activities: createNodeActivities({ rpc: o.rpc, hooks: o.hooks }),
    // Every RPC heartbeats while it runs: a dead agent is noticed within the RPC heartbeat timeout.
    interceptors: { activity: [heartbeatInterceptor(SELF_HEARTBEATING)] },
    // Long waits heartbeat; give them time to checkpoint before a shutdown cancels them.
    shutdownGraceTime: '5s',
    ...(o.dataConverter ? { dataConverter: o.dataConverter } : {}),
    ...o.workerOptions,
  });
}
