/**
 * Migration policies (issue 14) on a real dev server over the simulated cluster: a guest that
 * dirties its memory faster than the bandwidth never converges by itself, and the policy decides how
 * the migration ends — aborted within its completion timeout (or on a stall), converged by
 * auto-converge or a raised downtime, finished by post-copy (a point of no return) — and the
 * operator's force-complete. Every test checks where the instance ends up: its primary node, and
 * its process running on exactly one node.
 */
import { describe, expect, test } from 'vitest';
import { operationResult } from '../../client/api.js';
import { abortOperation, forceCompleteOperation } from '../../client/jobs.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import type { MigrationPolicyInput } from '../../domain/policy.js';
import { progressQuery, SA } from '../../workflows/messages.js';
import { failure, migrate, outcomeOf, start, useHarness, waitForProgress } from '../helpers/harness.js';
import type { TestCluster } from '../helpers/cluster.js';
import { mutatingSteps, waitForStep } from '../helpers/steps.js';

const h = useHarness();
const START_POSTCOPY = 'instance_migration_control(start-postcopy)@node1';

/** A guest dirtying 40 MiB/s: more than the default 32 MiB/s, so no transfer converges by itself. */
const HOT = { sim: { timeFactor: 50, guestDirtyRate: 40 } };

function expectOn(c: TestCluster, instance: string, node: string): void {
  expect(c.instance(instance).primaryNode).toBe(node);
  expect(c.status(instance).runningOn).toEqual([node]);
  expect(c.status(instance).processes[node]).toEqual({ state: 'running' });
}

function expectReverted(c: TestCluster): void {
  expectOn(c, 'web1', 'node1');
  expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
}

function expectMigrated(c: TestCluster): void {
  expectOn(c, 'web1', 'node2');
  expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
}

async function startWith(c: TestCluster, policy: MigrationPolicyInput) {
  return start(h.env(), c, { instance: 'web1', policy });
}

describe('timeouts', () => {
  test('a non-converging migration with onTimeout abort ends within its completion timeout + 5 s, on the source', async () => {
    const { c } = await h.cluster(HOT);
    const handle = await startWith(c, { completionTimeoutSecPerGiB: 4, onTimeout: 'abort' });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    const t0 = Date.now();
    const e = failure(await outcomeOf(operationResult(handle)));
    const took = (Date.now() - t0) / 1000;
    expect(took).toBeLessThan(4 + 5);
    expect(took).toBeGreaterThanOrEqual(3.5);
    expect(e.type).toBe('ExecutionFailed');
    expect(e.message).toBe('Could not migrate instance web1: the memory transfer did not complete within its completion timeout (4 s)');
    expect(e.feedback).toContain('Migration timed out, aborting');
    expect(e.feedback.find((l) => l.startsWith('* the memory transfer did not complete'))).toMatch(/MiB remaining, dirty rate 40 MiB\/s/);
    expect(mutatingSteps(c, 'web1')).toContain('instance_finalize_migration_src(failure)@node1');
    expectReverted(c);
  });

  test('a stall (the remaining memory does not go down) hits the progress timeout and aborts', async () => {
    const { c } = await h.cluster(HOT);
    const r = await migrate(h.env(), c, { instance: 'web1', policy: { completionTimeoutSecPerGiB: 0, progressTimeoutSec: 2 } });
    const e = failure(r);
    expect(e.message).toBe('Could not migrate instance web1: the memory transfer made no progress for 2 s (progress timeout)');
    expect(e.feedback).toContain(
      '* migration policy: bandwidth 32 MiB/s, max downtime 30 ms, auto-converge off, post-copy not allowed, ' +
        'no completion timeout (request), progress timeout 2 s (request), on timeout abort',
    );
    expectReverted(c);
  });
});

describe('convergence', () => {
  test('auto-converge throttles the guest until the transfer converges', async () => {
    const { c } = await h.cluster(HOT);
    const r = await migrate(h.env(), c, { instance: 'web1', policy: { autoConverge: true, completionTimeoutSecPerGiB: 60 } });
    expect(r.ok && r.result.outcome).toBe('migrated');
    expect(mutatingSteps(c, 'web1')).toContain('instance_migrate(node2:8102 live auto-converge)@node1');
    expectMigrated(c);
  });

  test('raise-downtime raises the allowed downtime on timeout until the transfer converges', async () => {
    // 20 MiB/s converges against 32 MiB/s, but its last dirty set (1 MiB) takes longer than 30 ms.
    const { c } = await h.cluster({ sim: { timeFactor: 50, guestDirtyRate: 20 } });
    const r = await migrate(h.env(), c, {
      instance: 'web1',
      policy: { maxDowntimeMs: 500, onTimeout: 'raise-downtime', completionTimeoutSecPerGiB: 4 },
    });
    expect(r.ok && r.result.outcome).toBe('migrated');
    expect(r.ok && r.result.feedback).toContain('* raised the allowed downtime to 60 ms (at most 500 ms)');
    expect(mutatingSteps(c, 'web1')).toContain('instance_migration_control(set-downtime 60 ms)@node1');
    expectMigrated(c);
  });

  test('raise-downtime aborts once the downtime is at its maximum', async () => {
    const { c } = await h.cluster(HOT);
    const e = failure(
      await migrate(h.env(), c, {
        instance: 'web1',
        policy: { maxDowntimeMs: 120, onTimeout: 'raise-downtime', completionTimeoutSecPerGiB: 2 },
      }),
    );
    expect(e.message).toBe(
      'Could not migrate instance web1: the memory transfer did not complete within its completion timeout (2 s), ' +
        'and the allowed downtime is at its maximum (120 ms)',
    );
    const steps = mutatingSteps(c, 'web1').filter((s) => s.startsWith('instance_migration_control'));
    expect(steps).toEqual([
      'instance_migration_control(set-downtime 60 ms)@node1',
      'instance_migration_control(set-downtime 120 ms)@node1',
    ]);
    expectReverted(c);
  });
});

describe('post-copy', () => {
  test('on timeout, post-copy completes the migration; an abort after the switch is refused with the reason', async () => {
    // At 4 MiB/s the post-copy of 1 GiB takes 256 simulated seconds (about 5 s): time to try an abort.
    const { c } = await h.cluster(HOT);
    const handle = await startWith(c, { bandwidth: 4, postcopy: true, onTimeout: 'postcopy', completionTimeoutSecPerGiB: 2 });
    await waitForProgress(handle, (p) => p.pointOfNoReturn);
    await expect(abortOperation(h.env().client, 'web1')).rejects.toThrow(/post-copy to node2 was started .*past the point of no return/);
    const r = await outcomeOf(operationResult(handle));
    expect(r.ok && r.result.outcome).toBe('migrated');
    expect(r.ok && r.result.feedback).toContain('* memory transfer has switched to postcopy');
    expect(mutatingSteps(c, 'web1')).toContain('instance_migration_control(start-postcopy)@node1');
    expectMigrated(c);
  });
  test('a failure after the switch is left for an operator with the repair command; the source is never resumed', async () => {
    const { c } = await h.cluster(HOT);
    const handle = await startWith(c, { bandwidth: 4, postcopy: true, onTimeout: 'postcopy', completionTimeoutSecPerGiB: 2 });
    await waitForProgress(handle, (p) => p.pointOfNoReturn);
    await waitForStep(c, 'web1', START_POSTCOPY); // switched, not only decided
    await c.inject('web1', 'node2', 'stopped'); // the destination dies during post-copy
    const e = failure(await outcomeOf(operationResult(handle)));
    expect(e.type).toBe('ExecutionFailed');
    expect(e.message).toMatch(/^Post-copy migration of web1 to node2 failed after the point of no return: /);
    expect(e.message).toContain('node2 held the only current state, the source node1 was not resumed');
    const repair =
      "find where web1 still runs from node2's state (never resume it on node1), then run 'ganeti-temporal instance migrate --cleanup web1'";
    expect(await handle.query(progressQuery)).toMatchObject({ needsOperator: true, repair });
    expect((await handle.describe()).typedSearchAttributes.get(SA.needsOperator)).toBe(true);
    // Nothing after the switch touched the source: it stays paused, the configuration unchanged.
    expect(c.status('web1').processes.node1).toMatchObject({ state: 'paused' });
    expect(c.status('web1').runningOn).toEqual(['node1']); // a process, paused
    expect(c.instance('web1').primaryNode).toBe('node1');
    const steps = mutatingSteps(c, 'web1');
    expect(steps.slice(steps.indexOf(START_POSTCOPY) + 1)).toEqual([]);
  });
});

describe('force-complete', () => {
  test('switches to post-copy when the policy allows it', async () => {
    const { c } = await h.cluster(HOT);
    const handle = await startWith(c, { postcopy: true, completionTimeoutSecPerGiB: 0, progressTimeoutSec: 0 });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    expect(await forceCompleteOperation(h.env().client, 'web1', 'maintenance window')).toMatchObject({
      accepted: true,
      action: 'postcopy',
    });
    const r = await outcomeOf(operationResult(handle));
    expect(r.ok && r.result.outcome).toBe('migrated');
    expect(r.ok && r.result.feedback).toContain('Force-complete requested by the operator: switching to post-copy (maintenance window)');
    expectMigrated(c);
  });

  test('pauses the guest on the source otherwise (a non-live finish), and refuses a second request', async () => {
    const { c } = await h.cluster(HOT);
    const handle = await startWith(c, { completionTimeoutSecPerGiB: 0, progressTimeoutSec: 0 });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    expect(await forceCompleteOperation(h.env().client, 'web1')).toMatchObject({ accepted: true, action: 'pause-source' });
    await expect(forceCompleteOperation(h.env().client, 'web1')).rejects.toThrow(/already accepted|already finished/);
    const r = await outcomeOf(operationResult(handle));
    expect(r.ok && r.result.outcome).toBe('migrated');
    expect(mutatingSteps(c, 'web1')).toContain('instance_migration_control(pause-source)@node1');
    expectMigrated(c);
  });

  test('is refused outside the memory transfer, with the reason, and changes nothing', async () => {
    const { c } = await h.cluster(HOT);
    const gate = c.gate('pre-hooks');
    c.hook('node1', 'instance-migrate', 'pre', '10-slow', gate.body);
    const handle = await startWith(c, { completionTimeoutSecPerGiB: 2 });
    await waitForProgress(handle, (p) => p.phase === 'pre-hooks');
    await expect(forceCompleteOperation(h.env().client, 'web1')).rejects.toThrow(
      'force-complete is accepted only while the memory transfer of web1 runs',
    );
    gate.open();
    failure(await outcomeOf(operationResult(handle)));
    await expect(forceCompleteOperation(h.env().client, 'web1')).rejects.toThrow(/already finished/);
    expectReverted(c);
  });
});

describe('policy resolution', () => {
  test('the request wins over the instance hvparams, which win over the cluster defaults', async () => {
    const { c } = await h.cluster({
      configure: (cfg) => {
        cfg.instances.web1!.hvparams = { migration_bandwidth: 64, migration_caps: 'auto-converge' };
        cfg.cluster.migrationPolicy.completionTimeoutSecPerGiB = 100;
      },
    });
    const r = await migrate(h.env(), c, { instance: 'web1', dryRun: true, policy: { maxDowntimeMs: 50, onTimeout: 'raise-downtime' } });
    expect(r.ok && r.result.feedback).toContain(
      '* migration policy: bandwidth 64 MiB/s (instance), max downtime 50 ms (request), auto-converge on (instance), ' +
        'post-copy not allowed (instance), completion timeout 100 s/GiB (100 s), progress timeout 150 s, on timeout raise-downtime (request)',
    );
    expectOn(c, 'web1', 'node1');
  });

  test('a contradictory policy is refused before anything changes', async () => {
    const { c } = await h.cluster();
    const e = failure(await migrate(h.env(), c, { instance: 'web1', policy: { onTimeout: 'postcopy' } }));
    expect(e).toMatchObject({ type: 'PrereqFailed', code: 'wrong_input' });
    expect(e.message).toBe("invalid migration policy: on timeout 'postcopy' needs post-copy to be allowed");
    expect(mutatingSteps(c, 'web1')).toEqual([]);
    expectOn(c, 'web1', 'node1');
  });
});
