/**
 * The catalogue of workflow paths whose histories are recorded (`npm run histories:record`) and
 * replayed on every test run (test/replay/). Each scenario builds a fresh simulated cluster, breaks
 * it as needed (faults, injected states, hooks), drives one operation on a real dev server — with
 * operator interactions (abort, cancel, a worker restart) where the path needs them — and states
 * how the operation must end, so a recording of the wrong path is refused.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkerOptions } from '@temporalio/worker';
import { startFailover, startMigration } from '../../client/api.js';
import { abortOperation } from '../../client/jobs.js';
import { startNodeFailover, startNodeMigration } from '../../client/node-api.js';
import type { NodeFailoverInput, NodeMigrateInput } from '../../domain/node-ops.js';
import { nodeProgressQuery } from '../../workflows/messages.js';
import { evacuationCluster } from '../helpers/evacuate.js';
import { orchestratorQueue, workflowIdFor } from '../../domain/naming.js';
import type { FailoverInput, MigrateInput } from '../../domain/ops.js';
import { setPower } from '../../adapters/sim/cluster.js';
import { createTestCluster, type TestCluster, type TestClusterOptions } from '../helpers/cluster.js';
import { waitForProgress } from '../helpers/harness.js';
import type { Server, Workers } from '../helpers/temporal.js';
import { POLICY_SCENARIOS } from './policy-scenarios.js';
import { POWER_SCENARIOS } from './power-scenarios.js';

export type WorkflowType =
  | 'migrateInstanceWorkflow'
  | 'failoverInstanceWorkflow'
  | 'startInstanceWorkflow'
  | 'shutdownInstanceWorkflow'
  | 'nodeMigrateWorkflow'
  | 'nodeFailoverWorkflow';

/** How the workflow must end: a result outcome, a failure type, or the workflow status. */
export type Expectation = { outcome: string } | { failure: string } | { status: 'CANCELLED' | 'COMPLETED' };

export interface ScenarioContext {
  env: TestWorkflowEnvironment;
  /** A fresh cluster with an orchestrator (given worker options) and all node agents running. */
  cluster(opts?: TestClusterOptions): Promise<{ c: TestCluster; w: Workers }>;
  migrate(c: TestCluster, input: MigrateInput): Promise<WorkflowHandle>;
  failover(c: TestCluster, input: FailoverInput): Promise<WorkflowHandle>;
  nodeMigrate(c: TestCluster, input: NodeMigrateInput): Promise<WorkflowHandle>;
  nodeFailover(c: TestCluster, input: NodeFailoverInput): Promise<WorkflowHandle>;
}

export interface Scenario {
  /** File name (without .json) under test/histories/<workflow>/. */
  name: string;
  workflow: WorkflowType;
  description: string;
  expect: Expectation;
  run(ctx: ScenarioContext): Promise<WorkflowHandle>;
}

/** The scenarios' context on the file's dev server (call it inside a test). */
export function scenarioContext(server: Server, workerOptions: Partial<WorkerOptions>): ScenarioContext {
  const env = server.env();
  return {
    env,
    async cluster(opts = {}) {
      const c = await createTestCluster(opts);
      const w = server.workers(c);
      await w.all(workerOptions);
      return { c, w };
    },
    migrate: (c, input) => startMigration(env.client, input, { cluster: c.name, snapshot: c.cfg() }),
    failover: (c, input) => startFailover(env.client, input, { cluster: c.name, snapshot: c.cfg() }),
    nodeMigrate: (c, input) => startNodeMigration(env.client, input, { cluster: c.name, snapshot: c.cfg() }),
    nodeFailover: (c, input) => startNodeFailover(env.client, input, { cluster: c.name, snapshot: c.cfg() }),
  };
}

const M: WorkflowType = 'migrateInstanceWorkflow';
const F: WorkflowType = 'failoverInstanceWorkflow';
const migrated = { outcome: 'migrated' };
const execFailed = { failure: 'ExecutionFailed' };
const prereqFailed = { failure: 'PrereqFailed' };

/** A migration of web1 with a permanent fault on one RPC. */
const migrateWithFault =
  (rpc: string, node: string, extra: { skip?: number } = {}) =>
  async (ctx: ScenarioContext) => {
    const { c } = await ctx.cluster();
    await c.addFault({ rpc, node, mode: 'permanent', ...extra });
    return ctx.migrate(c, { instance: 'web1' });
  };

/** A prerequisite refusal of a web1 migration on a configured cluster. */
/** A live migration of web1 to a node2 that fits it only once the instance is ballooned. */
const migrateBallooning = async (ctx: ScenarioContext): Promise<WorkflowHandle> =>
  ctx.migrate((await ctx.cluster({ configure: (cfg) => void (cfg.nodes.node2!.memoryTotal = 1024 + 2048 + 800) })).c, { instance: 'web1' });

const refusal =
  (opts: TestClusterOptions, input: MigrateInput = { instance: 'web1' }, arrange?: (c: TestCluster) => Promise<void>) =>
  async (ctx: ScenarioContext) => {
    const { c } = await ctx.cluster(opts);
    await arrange?.(c);
    return ctx.migrate(c, input);
  };

/** A migration of web1 whose source finalize fails after the transfer, then its cleanup. */
async function cleanupAfterFailedSourceFinalize(ctx: ScenarioContext): Promise<WorkflowHandle> {
  const { c } = await ctx.cluster();
  await c.addFault({ rpc: 'instance_finalize_migration_src', node: 'node1', mode: 'permanent' });
  await ctx.migrate(c, { instance: 'web1' }).then((h) => h.result().catch(() => undefined));
  await c.clearFaults();
  return ctx.migrate(c, { instance: 'web1', cleanup: true });
}

export const SCENARIOS: Scenario[] = [
  // ---- successful migrations --------------------------------------------------------------------
  {
    name: 'live-drbd',
    workflow: M,
    description: 'live DRBD migration to the secondary',
    expect: migrated,
    run: async (ctx) => ctx.migrate((await ctx.cluster()).c, { instance: 'web1' }),
  },
  {
    name: 'non-live-drbd',
    workflow: M,
    description: 'non-live DRBD migration',
    expect: migrated,
    run: async (ctx) => ctx.migrate((await ctx.cluster()).c, { instance: 'web1', mode: 'non-live' }),
  },
  {
    name: 'live-drbd-balloon',
    workflow: M,
    description: 'live migration that balloons the instance to fit the target',
    expect: migrated,
    run: migrateBallooning,
  },
  {
    name: 'sharedfile-target',
    workflow: M,
    description: 'sharedfile migration to an explicit target',
    expect: migrated,
    run: async (ctx) => ctx.migrate((await ctx.cluster()).c, { instance: 'files1', targetNode: 'node3' }),
  },
  {
    name: 'sharedfile-allocator',
    workflow: M,
    description: 'sharedfile migration placed by the built-in allocator',
    expect: migrated,
    run: async (ctx) => ctx.migrate((await ctx.cluster()).c, { instance: 'files1' }),
  },
  {
    name: 'dry-run',
    workflow: M,
    description: 'dry run: prerequisites and pre-hooks only',
    expect: { outcome: 'dry-run' },
    run: async (ctx) => ctx.migrate((await ctx.cluster()).c, { instance: 'web1', dryRun: true }),
  },

  // ---- prerequisite refusals that reach the workflow -------------------------------------------
  {
    name: 'prereq-invalid-input',
    workflow: M,
    description: 'input refused by the workflow itself (started without the client)',
    expect: prereqFailed,
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      return ctx.env.client.workflow.start('migrateInstanceWorkflow', {
        args: [{ instance: 'web1', bogus: true }],
        taskQueue: orchestratorQueue(c.name),
        workflowId: workflowIdFor('web1'),
      });
    },
  },
  {
    name: 'foreign-workflow-id',
    workflow: M,
    description: 'started under another ID than instance/<name> (a raw SDK start): refused before anything runs',
    expect: { failure: 'WrongWorkflowId' },
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      return ctx.env.client.workflow.start('migrateInstanceWorkflow', {
        args: [{ instance: 'db1' }],
        taskQueue: orchestratorQueue(c.name),
        workflowId: 'rogue-db1',
      });
    },
  },
  {
    name: 'foreign-workflow-id',
    workflow: F,
    description: "started under another instance's ID (instance/web2 for web1): refused before anything runs",
    expect: { failure: 'WrongWorkflowId' },
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      return ctx.env.client.workflow.start('failoverInstanceWorkflow', {
        args: [{ instance: 'web1' }],
        taskQueue: orchestratorQueue(c.name),
        workflowId: workflowIdFor('web2'),
      });
    },
  },
  {
    name: 'prereq-unknown-instance',
    workflow: M,
    description: 'unknown instance',
    expect: prereqFailed,
    run: refusal({}, { instance: 'nosuch' }),
  },
  {
    name: 'prereq-arbitrary-target',
    workflow: M,
    description: 'DRBD to a node other than the secondary',
    expect: prereqFailed,
    run: refusal({}, { instance: 'web1', targetNode: 'node3' }),
  },
  {
    name: 'prereq-to-primary',
    workflow: M,
    description: 'sharedfile to its own primary',
    expect: prereqFailed,
    run: refusal({}, { instance: 'files1', targetNode: 'node2' }),
  },
  {
    name: 'prereq-no-allocator',
    workflow: M,
    description: 'sharedfile without target and without a default allocator',
    expect: prereqFailed,
    run: refusal({ configure: (cfg) => void (cfg.cluster.defaultIallocator = null) }, { instance: 'files1' }),
  },
  {
    name: 'prereq-ipolicy',
    workflow: M,
    description: "target group's instance policy violated",
    expect: prereqFailed,
    run: refusal({
      configure: (cfg) => {
        cfg.nodes.node2!.group = 'small';
        cfg.cluster.groups.small = { name: 'small', ipolicy: { minmem: 0, maxmem: 512, maxVcpus: 64, diskTemplates: ['drbd'] } };
      },
    }),
  },
  {
    name: 'prereq-not-enough-memory',
    workflow: M,
    description: 'not enough free memory on the target',
    expect: prereqFailed,
    run: refusal({ configure: (cfg) => void (cfg.nodes.node2!.memoryTotal = 1024 + 2048 + 300) }),
  },
  {
    name: 'prereq-node-info-failure',
    workflow: M,
    description: 'the target does not answer node_info',
    expect: prereqFailed,
    run: refusal({}, { instance: 'web1' }, (c) => c.addFault({ rpc: 'node_info', node: 'node2', mode: 'permanent' })),
  },
  {
    name: 'prereq-missing-bridge',
    workflow: M,
    description: 'a bridge is missing on the target',
    expect: prereqFailed,
    run: refusal({}, { instance: 'web1' }, (c) => c.hw.mutate((s) => void (s.nodes.node2!.bridges = []))),
  },
  {
    name: 'prereq-drained-target',
    workflow: M,
    description: 'drained target',
    expect: prereqFailed,
    run: refusal({ configure: (cfg) => void (cfg.nodes.node2!.drained = true) }),
  },
  {
    name: 'prereq-not-running',
    workflow: M,
    description: 'instance not running, no fallback allowed',
    expect: prereqFailed,
    run: refusal({}, { instance: 'web1' }, (c) => c.inject('web1', 'node1', 'stopped')),
  },
  {
    name: 'prereq-instance-info-failure',
    workflow: M,
    description: 'runtime memory cannot be read',
    expect: prereqFailed,
    run: refusal({}, { instance: 'web1' }, (c) => c.addFault({ rpc: 'instance_info', node: 'node1', mode: 'permanent' })),
  },

  // ---- failures: compensated, left for cleanup, failed revert ------------------------------------
  {
    name: 'abort-at-accept',
    workflow: M,
    description: 'accept fails: abort + revert',
    expect: execFailed,
    run: migrateWithFault('accept_instance', 'node2'),
  },
  {
    name: 'abort-at-migrate',
    workflow: M,
    description: 'migrate fails: abort + revert',
    expect: execFailed,
    run: migrateWithFault('instance_migrate', 'node1'),
  },
  {
    name: 'abort-at-status',
    workflow: M,
    description: 'status polling fails: abort + revert',
    expect: execFailed,
    run: migrateWithFault('instance_get_migration_status', 'node1'),
  },
  {
    name: 'failed-revert-close',
    workflow: M,
    description: 'accept fails and closing the target disks during the revert fails too',
    expect: execFailed,
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      await c.addFault({ rpc: 'accept_instance', node: 'node2', mode: 'permanent' });
      await c.addFault({ rpc: 'blockdev_close', node: 'node2', mode: 'permanent', skip: 1 });
      return ctx.migrate(c, { instance: 'web1' });
    },
  },
  {
    name: 'failed-revert-reconnect',
    workflow: M,
    description: 'accept fails and reconnecting DRBD during the revert fails (a warning)',
    expect: execFailed,
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      await c.addFault({ rpc: 'accept_instance', node: 'node2', mode: 'permanent' });
      await c.addFault({ rpc: 'drbd_disconnect_net', node: 'node2', mode: 'permanent', skip: 1 });
      return ctx.migrate(c, { instance: 'web1' });
    },
  },
  {
    name: 'left-for-cleanup-dual-master',
    workflow: M,
    description: 'reconnecting dual-master fails: no rollback, --cleanup named',
    expect: execFailed,
    run: migrateWithFault('drbd_attach_net', 'node2'),
  },
  {
    name: 'left-for-cleanup-finalize',
    workflow: M,
    description: 'finalize on the source fails after the transfer',
    expect: execFailed,
    run: migrateWithFault('instance_finalize_migration_src', 'node1'),
  },
  {
    name: 'left-for-cleanup-demote',
    workflow: M,
    description: 'closing the source disks fails after the commit',
    expect: execFailed,
    run: migrateWithFault('blockdev_close', 'node1'),
  },

  // ---- cleanup ------------------------------------------------------------------------------------
  {
    name: 'cleanup-on-primary',
    workflow: M,
    description: 'cleanup: running on the primary, DRBD rebuilt',
    expect: { outcome: 'cleaned-up' },
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      await c.inject('web1', 'node1', 'standalone');
      return ctx.migrate(c, { instance: 'web1', cleanup: true });
    },
  },
  {
    name: 'cleanup-on-secondary',
    workflow: M,
    description: 'cleanup after a failed finalize on the target: running on the secondary, configuration updated',
    expect: { outcome: 'cleaned-up' },
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      await c.addFault({ rpc: 'instance_finalize_migration_dst', node: 'node2', mode: 'permanent' });
      await ctx.migrate(c, { instance: 'web1' }).then((h) => h.result().catch(() => undefined));
      await c.clearFaults();
      return ctx.migrate(c, { instance: 'web1', cleanup: true });
    },
  },
  {
    name: 'cleanup-on-both',
    workflow: M,
    description:
      'cleanup after a failed finalize on the source: running on both, the migration is aborted (recorded before the ' +
      'completed-transfer patch; today the same run finishes the migration: cleanup-on-both-completed)',
    expect: { outcome: 'cleaned-up' },
    run: cleanupAfterFailedSourceFinalize,
  },
  {
    name: 'cleanup-on-neither',
    workflow: M,
    description: 'cleanup: running nowhere, refused',
    expect: execFailed,
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      await c.inject('web1', 'node1', 'stopped');
      return ctx.migrate(c, { instance: 'web1', cleanup: true });
    },
  },
  {
    name: 'cleanup-adopt',
    workflow: M,
    description: 'cleanup: a sharedfile instance on one unexpected node is adopted',
    expect: { outcome: 'cleaned-up' },
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      await c.inject('files1', 'node2', 'stopped');
      await c.inject('files1', 'node3', 'running');
      return ctx.migrate(c, { instance: 'files1', cleanup: true, targetNode: 'node1' });
    },
  },

  // ---- failover and fallback --------------------------------------------------------------------
  {
    name: 'running',
    workflow: F,
    description: 'failover of a running instance',
    expect: { outcome: 'failed-over' },
    run: async (ctx) => ctx.failover((await ctx.cluster()).c, { instance: 'web1' }),
  },
  {
    name: 'admin-down',
    workflow: F,
    description: 'failover of an admin-down instance: primary swapped, nothing started',
    expect: { outcome: 'failed-over' },
    run: async (ctx) =>
      ctx.failover(
        (
          await ctx.cluster({
            configure: (cfg) => {
              cfg.instances.web1!.adminState = 'down';
              cfg.instances.web1!.disksActive = false;
            },
          })
        ).c,
        { instance: 'web1' },
      ),
  },
  {
    name: 'forthcoming',
    workflow: F,
    description: 'failover of a forthcoming instance: configuration only',
    expect: { outcome: 'failed-over' },
    run: async (ctx) =>
      ctx.failover((await ctx.cluster({ configure: (cfg) => void (cfg.instances.web1!.forthcoming = true) })).c, { instance: 'web1' }),
  },
  {
    name: 'offline-source-ignore-consistency',
    workflow: F,
    description: 'dead source marked offline, ignoring consistency: warnings, started on the target',
    expect: { outcome: 'failed-over' },
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      await c.hw.mutate((s, now) => setPower(s, now, 'node2', false));
      await c.config.modifyNode('node2', { offline: true });
      return ctx.failover(c, { instance: 'web2', ignoreConsistency: true });
    },
  },
  {
    name: 'failed-start',
    workflow: F,
    description: 'the start on the target fails: disks deactivated, primary swapped',
    expect: execFailed,
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      await c.addFault({ rpc: 'instance_start', node: 'node2', mode: 'permanent' });
      return ctx.failover(c, { instance: 'web1' });
    },
  },
  {
    name: 'fallback-admin-down',
    workflow: M,
    description: 'migrate with allowFailover of an admin-down instance falls back to failover',
    expect: { outcome: 'failed-over' },
    run: async (ctx) =>
      ctx.migrate(
        (
          await ctx.cluster({
            configure: (cfg) => {
              cfg.instances.web1!.adminState = 'down';
              cfg.instances.web1!.disksActive = false;
            },
          })
        ).c,
        { instance: 'web1', allowFailover: true },
      ),
  },
  {
    name: 'fallback-always-failover',
    workflow: M,
    description: 'migrate of an always_failover instance fails over',
    expect: { outcome: 'failed-over' },
    run: async (ctx) =>
      ctx.migrate((await ctx.cluster({ configure: (cfg) => void (cfg.instances.web2!.beparams.always_failover = true) })).c, {
        instance: 'web2',
      }),
  },

  // ---- hooks ---------------------------------------------------------------------------------------
  {
    name: 'pre-hook-veto',
    workflow: M,
    description: 'a failing pre-hook vetoes the migration',
    expect: { failure: 'HooksFailed' },
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      c.hook('node2', 'instance-migrate', 'pre', '10-veto', 'echo no; exit 1');
      return ctx.migrate(c, { instance: 'web1' });
    },
  },
  {
    name: 'post-hook-warning',
    workflow: F,
    description: 'a failing post-hook is a warning',
    expect: { outcome: 'failed-over' },
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      c.hook('node1', 'instance-failover', 'post', '10-fail', 'exit 1');
      return ctx.failover(c, { instance: 'web1' });
    },
  },

  // ---- operator interactions -------------------------------------------------------------------
  {
    name: 'abort-accepted',
    workflow: M,
    description: 'abort update accepted during the memory transfer: abort + revert',
    expect: { failure: 'Aborted' },
    run: async (ctx) => {
      const { c } = await ctx.cluster({ sim: { timeFactor: 4 } });
      const h = await ctx.migrate(c, { instance: 'web1' });
      await waitForProgress(h, (p) => p.phase === 'memory-transfer');
      await abortOperation(ctx.env.client, 'web1', 'recorded');
      return h;
    },
  },
  {
    name: 'abort-refused',
    workflow: M,
    description: 'abort update refused after the point of no return: rolls forward',
    expect: migrated,
    run: async (ctx) => {
      const { c } = await ctx.cluster({ sim: { timeFactor: 10, reconnectResync: 1200 } });
      const h = await ctx.migrate(c, { instance: 'web1' });
      await waitForProgress(h, (p) => p.pointOfNoReturn);
      await abortOperation(ctx.env.client, 'web1').catch(() => undefined);
      return h;
    },
  },
  {
    name: 'cancel-before-point-of-no-return',
    workflow: M,
    description: 'Web UI cancellation during the memory transfer: compensations run, ends cancelled',
    expect: { status: 'CANCELLED' },
    run: async (ctx) => {
      const { c } = await ctx.cluster({ sim: { timeFactor: 4 } });
      const h = await ctx.migrate(c, { instance: 'web1' });
      await waitForProgress(h, (p) => p.phase === 'memory-transfer');
      await h.cancel();
      return h;
    },
  },
  {
    name: 'cancel-after-point-of-no-return',
    workflow: M,
    description: 'Web UI cancellation after the point of no return: the migration completes',
    expect: migrated,
    run: async (ctx) => {
      const { c } = await ctx.cluster({ sim: { timeFactor: 10, reconnectResync: 1200 } });
      const h = await ctx.migrate(c, { instance: 'web1' });
      await waitForProgress(h, (p) => p.pointOfNoReturn);
      await h.cancel();
      return h;
    },
  },
  {
    name: 'orchestrator-restart',
    workflow: M,
    description: 'the orchestrator worker is replaced mid-resync; the new one finishes',
    expect: migrated,
    run: async (ctx) => {
      const { c, w } = await ctx.cluster({ sim: { timeFactor: 10, reconnectResync: 1200 } });
      const h = await ctx.migrate(c, { instance: 'web1' });
      await waitForProgress(h, (p) => p.phase === 'settle-sync');
      await w.stop(w.orch!);
      await new Promise((r) => setTimeout(r, 500));
      await w.orchestrator(w.orchestratorOptions);
      return h;
    },
  },

  // ---- crash safety (issue 9; recorded with the patches of that change) -------------------------
  {
    name: 'live-drbd-v2',
    workflow: M,
    description: 'live DRBD migration: the reservation is released at the commit point, waits fail fast',
    expect: migrated,
    run: async (ctx) => ctx.migrate((await ctx.cluster()).c, { instance: 'web1' }),
  },
  {
    name: 'running-v2',
    workflow: F,
    description: 'failover of a running instance: the reservation is released once it started',
    expect: { outcome: 'failed-over' },
    run: async (ctx) => ctx.failover((await ctx.cluster()).c, { instance: 'web1' }),
  },
  {
    name: 'transfer-completed-after-failed-wait',
    workflow: M,
    description: 'the status wait fails but the transfer had completed: the migration rolls forward',
    expect: migrated,
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      await c.addFault({ rpc: 'instance_get_migration_status', node: 'node1', mode: 'hang', times: 3 });
      return ctx.migrate(c, { instance: 'web1' });
    },
  },
  {
    name: 'cleanup-on-both-completed',
    workflow: M,
    description: 'cleanup after a failed finalize on the source: the transfer had completed, the migration is finished',
    expect: { outcome: 'cleaned-up' },
    run: cleanupAfterFailedSourceFinalize,
  },
  {
    name: 'cleanup-on-both-refused',
    workflow: M,
    description: 'cleanup with a copy running on the target and no completed transfer: the target refuses to stop it',
    expect: execFailed,
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      await c.inject('web1', 'node2', 'running');
      return ctx.migrate(c, { instance: 'web1', cleanup: true });
    },
  },
  {
    name: 'abort-before-first-activity',
    workflow: M,
    description: "abort accepted with the workflow's first task, before any activity: aborted, nothing changed",
    expect: { failure: 'Aborted' },
    run: async (ctx) => {
      const { c, w } = await ctx.cluster();
      await w.stop(w.orch!);
      const h = await ctx.migrate(c, { instance: 'web1' });
      const accepted = abortOperation(ctx.env.client, 'web1', 'recorded');
      await new Promise((r) => setTimeout(r, 500));
      await w.orchestrator(w.orchestratorOptions);
      await accepted;
      return h;
    },
  },
  {
    name: 'abort-in-pre-hooks-sharedfile',
    workflow: F,
    description: 'abort accepted during the pre-hooks of a sharedfile failover: aborted before the shutdown',
    expect: { failure: 'Aborted' },
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      c.hook('node2', 'instance-failover', 'pre', '10-slow', 'sleep 2');
      const h = await ctx.failover(c, { instance: 'files1', targetNode: 'node3' });
      await waitForProgress(h, (p) => p.phase === 'pre-hooks');
      await abortOperation(ctx.env.client, 'files1', 'recorded');
      return h;
    },
  },
  {
    name: 'wait-sync-fails-fast',
    workflow: M,
    description: "cleanup whose resync wait fails on one node: the other node's wait is cancelled",
    expect: execFailed,
    run: async (ctx) => {
      const { c } = await ctx.cluster({ sim: { timeFactor: 50, reconnectResync: 360_000 } });
      await c.inject('web1', 'node1', 'standalone');
      await c.addFault({ rpc: 'drbd_wait_sync', node: 'node2', mode: 'permanent' });
      return ctx.migrate(c, { instance: 'web1', cleanup: true });
    },
  },

  // ---- snapshots are slices (issue 12): the snapshot holds only what the operation acts on --------
  {
    name: 'live-drbd-slice',
    workflow: M,
    description: 'live DRBD migration; its snapshot holds the instance, the master and its nodes',
    expect: migrated,
    run: async (ctx) => ctx.migrate((await ctx.cluster()).c, { instance: 'web1' }),
  },
  {
    name: 'sharedfile-allocator-slice',
    workflow: M,
    description: 'sharedfile migration placed by the allocator; its snapshot holds the instance and every node',
    expect: migrated,
    run: async (ctx) => ctx.migrate((await ctx.cluster()).c, { instance: 'files1' }),
  },
  {
    name: 'running-slice',
    workflow: F,
    description: 'failover of a running instance; its snapshot holds the instance, the master and its nodes',
    expect: { outcome: 'failed-over' },
    run: async (ctx) => ctx.failover((await ctx.cluster()).c, { instance: 'web1' }),
  },
  {
    name: 'all-migrated-slice',
    workflow: 'nodeMigrateWorkflow',
    description: "node migrate; its snapshots hold the node's primary instances and every node",
    expect: { status: 'COMPLETED' },
    run: async (ctx) => ctx.nodeMigrate((await ctx.cluster(evacuationCluster(3, 3))).c, { node: 'node1', drain: true }),
  },

  // ---- instance start and shutdown (issue 13) ---------------------------------------------------
  ...POWER_SCENARIOS,
  ...POLICY_SCENARIOS,
  // ---- node operations (issue 13) ---------------------------------------------------------------
  {
    name: 'all-migrated',
    workflow: 'nodeMigrateWorkflow',
    description: 'node migrate: every primary instance migrated as its own child, two at a time',
    expect: { status: 'COMPLETED' },
    run: async (ctx) => ctx.nodeMigrate((await ctx.cluster(evacuationCluster(3, 3))).c, { node: 'node1', drain: true }),
  },
  {
    name: 'one-child-fails',
    workflow: 'nodeMigrateWorkflow',
    description: 'node migrate: one child fails at accept, the others are migrated',
    expect: execFailed,
    run: async (ctx) => {
      const { c } = await ctx.cluster(evacuationCluster(3, 3));
      await c.addFault({ rpc: 'accept_instance', node: 'node3', mode: 'permanent' });
      return ctx.nodeMigrate(c, { node: 'node1' });
    },
  },
  {
    name: 'aborted-half-way',
    workflow: 'nodeMigrateWorkflow',
    description: 'node migrate aborted after the first instance moved: the running one aborts, the rest never start',
    expect: { failure: 'Aborted' },
    run: async (ctx) => {
      const { c } = await ctx.cluster(evacuationCluster(3, 4, { sim: { timeFactor: 10 } }));
      const h = await ctx.nodeMigrate(c, { node: 'node1', limits: { maxConcurrent: 1 } });
      for (;;) {
        const v = await h.query(nodeProgressQuery).catch(() => null);
        if (v && v.counts.done >= 1 && v.counts.running >= 1) break;
        await new Promise((r) => setTimeout(r, 30));
      }
      await abortOperation(ctx.env.client, 'node/node1', 'recorded');
      return h;
    },
  },
  {
    name: 'offline-node',
    workflow: 'nodeFailoverWorkflow',
    description: 'node failover of a powered-off node marked offline, ignoring consistency',
    expect: { status: 'COMPLETED' },
    run: async (ctx) => {
      const { c } = await ctx.cluster(evacuationCluster(3, 3, { configure: (cfg) => void (cfg.cluster.masterNode = 'node2') }));
      await c.hw.mutate((s, now) => setPower(s, now, 'node1', false));
      await c.config.modifyNode('node1', { offline: true });
      return ctx.nodeFailover(c, { node: 'node1', ignoreConsistency: true });
    },
  },

  // ---- fewer workflow tasks (issues 12 and 14; recorded with the patch finalize-both-at-once) ---
  {
    name: 'live-drbd-v3',
    workflow: M,
    description: 'live DRBD migration: source and target finalized at once',
    expect: migrated,
    run: async (ctx) => ctx.migrate((await ctx.cluster()).c, { instance: 'web1' }),
  },
  {
    name: 'left-for-cleanup-finalize-v2',
    workflow: M,
    description: 'finalize on the source fails after the transfer, the target finalized at the same time',
    expect: execFailed,
    run: migrateWithFault('instance_finalize_migration_src', 'node1'),
  },
  // Recorded with the patches read-ahead and open-and-release-at-once as well.
  {
    name: 'live-drbd-v4',
    workflow: M,
    description: 'live DRBD migration: read-only RPCs read ahead, disks opened on both sides at once, release with the demotion',
    expect: migrated,
    run: async (ctx) => ctx.migrate((await ctx.cluster()).c, { instance: 'web1' }),
  },
  {
    name: 'live-drbd-balloon-v2',
    workflow: M,
    description: 'live migration that balloons first: the migration information is not read ahead',
    expect: migrated,
    run: migrateBallooning,
  },
  {
    name: 'sharedfile-allocator-v2',
    workflow: M,
    description: 'sharedfile migration placed by the allocator, the source read ahead with the allocator round',
    expect: migrated,
    run: async (ctx) => ctx.migrate((await ctx.cluster()).c, { instance: 'files1' }),
  },
  {
    name: 'prereq-not-enough-memory-v2',
    workflow: M,
    description: 'not enough free memory on the target: the answers read ahead are not used',
    expect: prereqFailed,
    run: refusal({ configure: (cfg) => void (cfg.nodes.node2!.memoryTotal = 1024 + 2048 + 300) }),
  },
  {
    name: 'running-v3',
    workflow: F,
    description: 'failover of a running instance: the bridges read ahead with the memory reservation',
    expect: { outcome: 'failed-over' },
    run: async (ctx) => ctx.failover((await ctx.cluster()).c, { instance: 'web1' }),
  },
  {
    name: 'left-for-cleanup-open-v2',
    workflow: M,
    description: 'opening the disks for dual use fails on the source while the target opens at once',
    expect: execFailed,
    run: migrateWithFault('blockdev_open', 'node1'),
  },
  {
    name: 'left-for-cleanup-demote-v2',
    workflow: M,
    description: 'closing the source disks fails after the commit while the reservation is released',
    expect: execFailed,
    run: migrateWithFault('blockdev_close', 'node1'),
  },
];

/** Waits for the end and checks it is the catalogue's expected end. */
export async function finish(s: Scenario, h: WorkflowHandle): Promise<void> {
  const outcome = await h.result().then(
    (r) => ({ outcome: (r as { outcome?: string }).outcome }),
    (e: unknown) => ({ error: e as { cause?: { type?: string; name?: string } } }),
  );
  const status = (await h.describe()).status.name;
  const want = s.expect;
  if ('status' in want) {
    if (status !== want.status) throw new Error(`${s.name}: expected status ${want.status}, got ${status}`);
  } else if ('outcome' in want) {
    if (!('outcome' in outcome) || outcome.outcome !== want.outcome)
      throw new Error(`${s.name}: expected outcome ${want.outcome}, got ${JSON.stringify(outcome)}`);
  } else {
    const type = 'error' in outcome ? outcome.error.cause?.type : undefined;
    if (type !== want.failure) throw new Error(`${s.name}: expected failure ${want.failure}, got ${type ?? JSON.stringify(outcome)}`);
  }
}
