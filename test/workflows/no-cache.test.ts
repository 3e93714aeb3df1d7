/**
 * Catalogue scenarios run with an orchestrator that caches no workflow (`maxCachedWorkflows: 0`):
 * every workflow task — and every query — replays the history from the start, so replay safety is
 * exercised on live executions, not only on recorded ones.
 */
import { expect, test } from 'vitest';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { finish, scenarioContext, SCENARIOS } from '../histories/catalogue.js';
import { useServer } from '../helpers/temporal.js';

const PICKED = [
  'live-drbd',
  'sharedfile-target',
  'abort-at-status',
  'failed-revert-close',
  'left-for-cleanup-finalize',
  'cleanup-on-both',
  'running',
  'fallback-admin-down',
  'pre-hook-veto',
  'abort-accepted',
  'cancel-before-point-of-no-return',
  'orchestrator-restart',
];

const server = useServer();

test.each(PICKED)('%s, with every workflow task replayed', async (name) => {
  const s = SCENARIOS.find((x) => x.name === name)!;
  const ctx = scenarioContext(server, { maxCachedWorkflows: 0 });
  let instanceOf: (() => { c: { instance(n: string): never; status(n: string): never } }) | undefined;
  const handle = await s.run({
    ...ctx,
    cluster: async (opts) => {
      const r = await ctx.cluster(opts);
      instanceOf = () => ({ c: r.c as never });
      return r;
    },
  });
  await finish(s, handle);
  if (name === 'live-drbd') {
    const { c } = instanceOf!();
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  }
});
