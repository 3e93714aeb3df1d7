/**
 * A real Temporal dev server per test file (the pinned CLI), and the project's workers for a test
 * cluster: the orchestrator plus one node agent per node, each with its own task queues.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker, WorkerOptions } from '@temporalio/worker';
import type { NodeRpc } from '../../domain/ports.js';
import { afterAll, afterEach, beforeAll, inject } from 'vitest';
import { SEARCH_ATTRIBUTES } from '../../workflows/messages.js';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../worker/dev-server.js';
import { createNodeAgent, simBackend, simHooks } from '../../worker/node-agent.js';
import { createOrchestratorWorker } from '../../worker/orchestrator.js';
import type { TestCluster } from './cluster.js';

export async function startServer(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: inject('temporalCli') },
      searchAttributes: SEARCH_ATTRIBUTES,
      log: { format: 'pretty', level: 'error' },
      extraArgs: DEV_SERVER_DYNAMIC_CONFIG,
    },
  });
}

export const testBundle = () => ({ codePath: inject('workflowBundlePath') });

/**
 * One dev server for the test file (started before its tests, torn down after), and a list of
 * cleanups run after each test, newest first.
 */
export function useServer(): { env: () => TestWorkflowEnvironment; cleanups: Array<() => Promise<void>> } {
  let env: TestWorkflowEnvironment | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    env = await startServer();
  });
  afterEach(async () => {
    for (const f of cleanups.splice(0).reverse()) await f();
  });
  afterAll(async () => {
    await env?.teardown();
  });
  return { env: () => env!, cleanups };
}

export class Workers {
  private runs = new Map<Worker, Promise<void>>();
  /** The current orchestrator worker and node agents (by node). */
  orch: Worker | undefined;
  /** The options the orchestrator was last started with (to start an identical replacement). */
  orchestratorOptions: Partial<WorkerOptions> = {};
  readonly agents = new Map<string, Worker>();
  constructor(
    readonly env: TestWorkflowEnvironment,
    readonly cluster: TestCluster,
    /** The backend of each node agent (default: the simulated node). */
    readonly rpcFor: (node: string) => NodeRpc = (node) => simBackend(cluster.home, node),
  ) {}

  private start(w: Worker): Worker {
    this.runs.set(w, w.run());
    return w;
  }

  async orchestrator(workerOptions: Partial<WorkerOptions> = {}): Promise<Worker> {
    this.orchestratorOptions = workerOptions;
    this.orch = this.start(
      await createOrchestratorWorker({
        connection: this.env.nativeConnection,
        namespace: 'default',
        cluster: this.cluster.name,
        home: this.cluster.home,
        client: this.env.client,
        workflowBundle: testBundle(),
        workerOptions: { stickyQueueScheduleToStartTimeout: '1s', ...workerOptions },
      }),
    );
    return this.orch;
  }

  async agent(node: string): Promise<Worker> {
    const w = this.start(
      await createNodeAgent({
        connection: this.env.nativeConnection,
        namespace: 'default',
        cluster: this.cluster.name,
        node,
        rpc: this.rpcFor(node),
        hooks: simHooks(this.cluster.home, node),
        workerOptions: { shutdownGraceTime: '100ms', shutdownForceTime: '2s' },
      }),
    );
    this.agents.set(node, w);
    return w;
  }

  /** The orchestrator and an agent for every node of the cluster. */
  async all(workerOptions: Partial<WorkerOptions> = {}): Promise<this> {
    await this.orchestrator(workerOptions);
    for (const n of Object.keys(this.cluster.cfg().nodes)) await this.agent(n);
    return this;
  }

  async stop(w: Worker): Promise<void> {
    const run = this.runs.get(w);
    if (!run) return;
    w.shutdown();
    await run.catch(() => undefined);
    this.runs.delete(w);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.runs.keys()].map((w) => this.stop(w)));
  }
}
