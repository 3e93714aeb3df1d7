/** The orchestrator worker: hosts the workflows and the configuration-store activities. */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { createOrchestratorActivities } from '../activities/index.js';
import { orchestratorQueue } from '../domain/naming.js';
import type { OperationControl } from '../domain/ports.js';
import { openConfigStore } from '../adapters/store/open.js';
import type { SqlConfigStore } from '../adapters/store/sql-store.js';
import { heartbeatInterceptor } from './heartbeat.js';

export interface OrchestratorOptions {
  connection: NativeConnection;
  namespace: string;
  cluster: string;
  home: string;
  /** Used to drop memory reservations of operations that no longer run. */
  client?: Client;
  workflowBundle: NonNullable<WorkerOptions['workflowBundle']>;
  /** The payload codec (connection/codec.ts); the worker commands always pass the cluster's. */
  dataConverter?: DataConverter;
  /** Extra worker options (tests tune the sticky cache with these). */
  workerOptions?: Partial<WorkerOptions>;
}

export function configStoreFor(home: string, client?: Client): SqlConfigStore {
  return openConfigStore(home, {
    ...(client
      ? {
          isOperationRunning: async (workflowId: string, runId: string) => {
            try {
              return (await client.workflow.getHandle(workflowId, runId).describe()).status.name === 'RUNNING';
            } catch (e) {
              // A run the server no longer knows (retention, a new server database) runs no more.
              if (e instanceof WorkflowNotFoundError) return false;
              throw e;
            }
          },
        }
      : {}),
  });
}

/** Sends the `abort` update with the orchestrator's client (a node operation aborting its children). */
export function operationControl(client: Client): OperationControl {
  return {
    async abort(workflowId, runId, reason) {
      const handle = client.workflow.getHandle(workflowId, runId ?? undefined);
      try {
        const r = await handle.executeUpdate<{ message: string }, [{ reason?: string }]>('abort', { args: [reason ? { reason } : {}] });
        return { accepted: true, message: r.message };
      } catch (e) {
        if (e instanceof WorkflowUpdateFailedError) return { accepted: false, message: e.cause?.message ?? e.message };
        // The server refuses updates to a closed workflow before any validator runs.
        const status = await handle.describe().then(
          (d) => d.status.name,
          () => null,
        );
        if (status && status !== 'RUNNING') return { accepted: false, message: `the operation has already finished (${status})` };
        throw e;
      }
    },
  };
}

/** See createOrchestratorWorker: how long a workflow task waits for the orchestrator that has the workflow cached. */
export const STICKY_SCHEDULE_TO_START_TIMEOUT = '10s';

export const MAX_CACHED_WORKFLOWS_ENV = 'GANETI_TEMPORAL_MAX_CACHED_WORKFLOWS';

/**
 * The sticky cache's size from GANETI_TEMPORAL_MAX_CACHED_WORKFLOWS (a whole number ≥ 0), or
 * undefined: the SDK's default, which sizes it from the heap limit (thousands of workflows, a few MiB
 * each). A smaller cache bounds the orchestrator's memory under many concurrent operations; a
 * workflow evicted from it replays its history on its next task.
 */
export function maxCachedWorkflows(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env[MAX_CACHED_WORKFLOWS_ENV];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw new Error(`${MAX_CACHED_WORKFLOWS_ENV} must be a whole number (got ${JSON.stringify(raw)})`);
  return Number(raw);
}

export async function createOrchestratorWorker(o: OrchestratorOptions): Promise<Worker> {
  const cache = maxCachedWorkflows();
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: orchestratorQueue(o.cluster),
    identity: `orchestrator@${o.cluster}/${process.pid}`,
    workflowBundle: o.workflowBundle,
    activities: createOrchestratorActivities({
      config: configStoreFor(o.home, o.client),
      ...(o.client ? { control: operationControl(o.client) } : {}),
    }),
    ...(o.dataConverter ? { dataConverter: o.dataConverter } : {}),
    // The configuration activities heartbeat (a killed orchestrator's are retried within seconds).
    interceptors: { activity: [heartbeatInterceptor()] },
    // A workflow task queued for a killed orchestrator's sticky cache moves to the shared queue after
    // this; the replacement then replays the history. Not shorter: under load (hundreds of running
    // operations) a live orchestrator's tasks wait seconds for its workflow thread, and a task that
    // times out here goes to the back of the shared queue, behind every new operation's first task
    // (147 s measured at 1,000 concurrent migrations with 3 s), and is replayed from its history.
    stickyQueueScheduleToStartTimeout: STICKY_SCHEDULE_TO_START_TIMEOUT,
    ...(cache === undefined ? {} : { maxCachedWorkflows: cache }),
    ...o.workerOptions,
  });
}
