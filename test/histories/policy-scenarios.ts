/**
 * Catalogue scenarios of migration policies (issue 14): the paths `patched('migration-policy')`
 * guards (a timeout acted on: abort — on the completion or the progress timeout —, raise-downtime,
 * post-copy, and post-copy failing after the switch; force-complete: post-copy or a paused source),
 * recorded and replayed like the others. A guest dirtying 40 MiB/s never converges at the
 * default 32 MiB/s by itself.
 */
import { abortOperation, forceCompleteOperation } from '../../client/jobs.js';
import { waitForProgress } from '../helpers/harness.js';
import { waitForStep } from '../helpers/steps.js';
import type { Scenario } from './catalogue.js';

const M = 'migrateInstanceWorkflow';
const START_POSTCOPY = 'instance_migration_control(start-postcopy)@node1';
const HOT = { sim: { timeFactor: 50, guestDirtyRate: 40 } };

export const POLICY_SCENARIOS: Scenario[] = [
  {
    name: 'policy-timeout-abort',
    workflow: M,
    description: 'a non-converging transfer hits its completion timeout; on timeout abort: abort + revert',
    expect: { failure: 'ExecutionFailed' },
    run: async (ctx) => {
      const { c } = await ctx.cluster(HOT);
      return ctx.migrate(c, { instance: 'web1', policy: { completionTimeoutSecPerGiB: 2, onTimeout: 'abort' } });
    },
  },
  {
    name: 'policy-progress-timeout-abort',
    workflow: M,
    description:
      'a stalled transfer (the remaining memory never reaches a new low) hits its progress timeout; on timeout abort: abort + revert',
    expect: { failure: 'ExecutionFailed' },
    run: async (ctx) => {
      const { c } = await ctx.cluster(HOT);
      return ctx.migrate(c, { instance: 'web1', policy: { completionTimeoutSecPerGiB: 0, progressTimeoutSec: 2, onTimeout: 'abort' } });
    },
  },
  {
    name: 'policy-raise-downtime',
    workflow: M,
    description: 'a transfer whose last dirty set does not fit in 30 ms: on timeout the downtime is raised and it converges',
    expect: { outcome: 'migrated' },
    run: async (ctx) => {
      const { c } = await ctx.cluster({ sim: { timeFactor: 50, guestDirtyRate: 20 } });
      return ctx.migrate(c, {
        instance: 'web1',
        policy: { maxDowntimeMs: 500, onTimeout: 'raise-downtime', completionTimeoutSecPerGiB: 3 },
      });
    },
  },
  {
    name: 'policy-postcopy',
    workflow: M,
    description: 'on timeout post-copy (the point of no return): an abort during it is refused, the migration completes',
    expect: { outcome: 'migrated' },
    run: async (ctx) => {
      const { c } = await ctx.cluster(HOT);
      const h = await ctx.migrate(c, {
        instance: 'web1',
        policy: { bandwidth: 4, postcopy: true, onTimeout: 'postcopy', completionTimeoutSecPerGiB: 2 },
      });
      await waitForProgress(h, (p) => p.pointOfNoReturn);
      await abortOperation(ctx.env.client, 'web1').catch(() => undefined);
      return h;
    },
  },
  {
    name: 'policy-postcopy-failed',
    workflow: M,
    description:
      'post-copy on timeout, then the destination dies during it: left for an operator (GanetiNeedsOperator, the repair command), the source never resumed',
    expect: { failure: 'ExecutionFailed' },
    run: async (ctx) => {
      const { c } = await ctx.cluster(HOT);
      const h = await ctx.migrate(c, {
        instance: 'web1',
        policy: { bandwidth: 4, postcopy: true, onTimeout: 'postcopy', completionTimeoutSecPerGiB: 2 },
      });
      await waitForProgress(h, (p) => p.pointOfNoReturn);
      await waitForStep(c, 'web1', START_POSTCOPY); // switched, not only decided
      await c.inject('web1', 'node2', 'stopped');
      return h;
    },
  },
  {
    name: 'policy-force-complete-postcopy',
    workflow: M,
    description: 'force-complete during the memory transfer with post-copy allowed: switches to post-copy',
    expect: { outcome: 'migrated' },
    run: async (ctx) => {
      const { c } = await ctx.cluster(HOT);
      const h = await ctx.migrate(c, {
        instance: 'web1',
        policy: { postcopy: true, completionTimeoutSecPerGiB: 0, progressTimeoutSec: 0 },
      });
      await waitForProgress(h, (p) => p.phase === 'memory-transfer');
      await forceCompleteOperation(ctx.env.client, 'web1', 'recorded');
      return h;
    },
  },
  {
    name: 'policy-force-complete-pause',
    workflow: M,
    description: 'force-complete without post-copy: the source is paused and the transfer finishes non-live',
    expect: { outcome: 'migrated' },
    run: async (ctx) => {
      const { c } = await ctx.cluster(HOT);
      const h = await ctx.migrate(c, { instance: 'web1', policy: { completionTimeoutSecPerGiB: 0, progressTimeoutSec: 0 } });
      await waitForProgress(h, (p) => p.phase === 'memory-transfer');
      await forceCompleteOperation(ctx.env.client, 'web1');
      return h;
    },
  },
];
