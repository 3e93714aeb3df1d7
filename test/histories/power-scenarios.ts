/**
 * Catalogue scenarios of `instance start` and `instance shutdown` (issue 13, items 5 and 6): the
 * paths of startInstanceWorkflow and shutdownInstanceWorkflow, recorded and replayed like the others.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { startShutdown, startStartup } from '../../client/api.js';
import { orchestratorQueue } from '../../domain/naming.js';
import type { ShutdownInput, StartupInput } from '../../domain/ops.js';
import type { ClusterConfig } from '../../domain/types.js';
import type { TestCluster } from '../helpers/cluster.js';
import type { Scenario, ScenarioContext } from './catalogue.js';

const S = 'startInstanceWorkflow';
const D = 'shutdownInstanceWorkflow';

const startup = (ctx: ScenarioContext, c: TestCluster, input: StartupInput): Promise<WorkflowHandle> =>
  startStartup(ctx.env.client, input, { cluster: c.name, snapshot: c.cfg() });
const shutdown = (ctx: ScenarioContext, c: TestCluster, input: ShutdownInput): Promise<WorkflowHandle> =>
  startShutdown(ctx.env.client, input, { cluster: c.name, snapshot: c.cfg() });

const web1Down = (cfg: ClusterConfig): void => {
  cfg.instances.web1!.adminState = 'down';
  cfg.instances.web1!.disksActive = false;
};

export const POWER_SCENARIOS: Scenario[] = [
  {
    name: 'start-stopped',
    workflow: S,
    description: 'start of a stopped DRBD instance: marked up, disks assembled (secondaries, then the primary), started',
    expect: { outcome: 'started' },
    run: async (ctx) => startup(ctx, (await ctx.cluster({ configure: web1Down })).c, { instance: 'web1', reason: 'recorded' }),
  },
  {
    name: 'start-already-running',
    workflow: S,
    description: 'start of an instance that runs already: only marked up',
    expect: { outcome: 'started' },
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      await c.config.modifyInstance('web1', { adminState: 'down' });
      return startup(ctx, c, { instance: 'web1' });
    },
  },
  {
    name: 'start-dry-run',
    workflow: S,
    description: 'dry run of a start: prerequisites (with the memory reservation) and pre-hooks only',
    expect: { outcome: 'dry-run' },
    run: async (ctx) => startup(ctx, (await ctx.cluster({ configure: web1Down })).c, { instance: 'web1', dryRun: true }),
  },
  {
    name: 'start-not-enough-memory',
    workflow: S,
    description: 'start refused: too little free memory on the primary',
    expect: { failure: 'PrereqFailed' },
    run: async (ctx) => {
      const { c } = await ctx.cluster({ configure: (cfg) => (web1Down(cfg), void (cfg.nodes.node1!.memoryTotal = 3072)) });
      return startup(ctx, c, { instance: 'web1' });
    },
  },
  {
    name: 'start-failed',
    workflow: S,
    description: 'instance_start fails on the primary: the disks are shut down again, needs an operator',
    expect: { failure: 'ExecutionFailed' },
    run: async (ctx) => {
      const { c } = await ctx.cluster({ configure: web1Down });
      await c.addFault({ rpc: 'instance_start', node: 'node1', mode: 'permanent' });
      return startup(ctx, c, { instance: 'web1' });
    },
  },
  {
    name: 'start-foreign-workflow-id',
    workflow: S,
    description: 'a start under another ID than instance/<name>: refused before anything runs',
    expect: { failure: 'WrongWorkflowId' },
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      return ctx.env.client.workflow.start(S, {
        args: [{ instance: 'web1' }],
        taskQueue: orchestratorQueue(c.name),
        workflowId: 'start-web1',
      });
    },
  },
  {
    name: 'shutdown-running',
    workflow: D,
    description: 'shutdown of a running DRBD instance: marked down, shut down, disks deactivated on both nodes',
    expect: { outcome: 'stopped' },
    run: async (ctx) => shutdown(ctx, (await ctx.cluster()).c, { instance: 'web1', timeout: 30, reason: 'recorded' }),
  },
  {
    name: 'shutdown-running-slice',
    workflow: D,
    description: 'shutdown of a running DRBD instance; its snapshot holds the instance, the master and its nodes',
    expect: { outcome: 'stopped' },
    run: async (ctx) => shutdown(ctx, (await ctx.cluster()).c, { instance: 'web2', timeout: 30, reason: 'recorded' }),
  },
  {
    name: 'shutdown-sharedfile-no-remember',
    workflow: D,
    description: 'shutdown of a sharedfile instance with --no-remember: the admin state is left as it is',
    expect: { outcome: 'stopped' },
    run: async (ctx) => shutdown(ctx, (await ctx.cluster()).c, { instance: 'files1', noRemember: true }),
  },
  {
    name: 'shutdown-pre-hook-veto',
    workflow: D,
    description: 'an instance-stop pre-hook vetoes the shutdown before any change',
    expect: { failure: 'HooksFailed' },
    run: async (ctx) => {
      const { c } = await ctx.cluster();
      c.hook('node2', 'instance-stop', 'pre', '10-veto', 'echo no; exit 1');
      return shutdown(ctx, c, { instance: 'web1' });
    },
  },
];
