/**
 * A real Temporal dev server per test file (the pinned CLI), and the project's workers for a test
 * cluster: the orchestrator plus one node agent per node, each with its own task queues.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker, WorkerOptions } from '@temporalio/worker';
import type { NodeRpc } from '../../domain/ports.js';
import { afterAll, afterEach, beforeAll, inject } from 'vitest';
import { createDevServer, type DevServerSettings } from '../../worker/dev-server.js';
import { createNodeAgent, simBackend, simHooks } from '../../worker/node-agent.js';
import { createOrchestratorWorker } from '../../worker/orchestrator.js';
import type { TestCluster } from './cluster.js';

/** The pinned Temporal CLI the global setup resolved, as the SDK's executable setting. */
export const temporalCli = () => ({ type: 'existing-path', path: inject('temporalCli') }) as const;

/** A dev server of the pinned CLI as the project runs it (search attributes, dynamic config); `server` adds settings (a Web UI port …). */
export async function startServer(server: DevServerSettings = {}): Promise<TestWorkflowEnvironment> {
  return createDevServer({ executable: temporalCli(), log: { format: 'pretty', level: 'error' }, ...server });
}

export const testBundle = () => ({ codePath: inject('workflowBundlePath') });

/** Terminates every running workflow on the server (what a test left behind). */
async function terminateRunning(env: TestWorkflowEnvironment): Promise<void> {
  for await (const wf of env.client.workflow.list({ query: 'ExecutionStatus = "Running"' })) {
    await env.client.workflow
      .getHandle(wf.workflowId, wf.runId)
      .terminate('test cleanup')
      .catch(() => undefined);
  }
}

export interface Server {
  /** The file's dev server (throws outside its tests, e.g. when starting it failed). */
  env(): TestWorkflowEnvironment;
  /**
   * Workers for a cluster in the current test (none started yet). After the test: running
   * workflows terminated, the workers stopped, `afterStop` run, the cluster removed.
   */
  workers(c: TestCluster, opts?: { rpcFor?: (node: string) => NodeRpc; afterStop?: () => Promise<unknown> }): Workers;
}

/**
 * One dev server for the test file (started before its tests, torn down after); what a test sets up
 * on it through `workers` is cleaned up after the test, newest first.
 */
export function useServer(): Server {
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
  const current = (): TestWorkflowEnvironment => {
    if (!env) throw new Error('the dev server is not running (beforeAll failed?)');
    return env;
  };
  return {
    env: current,
    workers(c, opts = {}) {
      const w = new Workers(current(), c, opts.rpcFor);
      cleanups.push(async () => {
        await terminateRunning(current());
        await w.stopAll();
        await opts.afterStop?.();
        c.remove();
      });
      return w;
    },
  };
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
