/**
 * The operator surface of a running operation: the `abort` update (accepted before the point of no
 * return, refused after it), Web UI cancellation and termination, needs-operator, the Web UI's
 * summary / current details / activity summaries, search attributes and the progress query.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { describe, expect, test } from 'vitest';
import { operationResult } from '../../client/api.js';
import { abortOperation, AbortRefusedError, jobInfo, listJobs } from '../../client/jobs.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { progressQuery, SA } from '../../workflows/messages.js';
import { decodePayload } from '../helpers/codec.js';
import { failure, outcomeOf, start, useHarness, waitForProgress } from '../helpers/harness.js';
import { ABORT_AND_REVERT_NODE1_NODE2, mutatingSteps, stepsFromAbort } from '../helpers/steps.js';

const h = useHarness();

describe('abort', () => {
  test('during the memory transfer: accepted, abort + revert run, the instance stays on the source', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 4 } });
    const handle = await start(h.env(), c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    const a = await abortOperation(h.env().client, 'web1', 'wrong instance');
    expect(a).toMatchObject({ accepted: true, phase: 'memory-transfer' });
    const e = failure(await outcomeOf(operationResult(handle)));
    expect(e.type).toBe('Aborted');
    expect(e.message).toBe(
      'Migrate web1: node1 → node2, live: aborted by the operator during memory-transfer (wrong instance); ' +
        'the migration was aborted and the disks reverted; web1 stays on node1',
    );
    expect(e.feedback).toContain('Abort requested by the operator during memory-transfer (wrong instance)');
    expect(e.feedback).toContain('Migration aborted, aborting');
    expect(stepsFromAbort(c, 'web1')).toEqual(ABORT_AND_REVERT_NODE1_NODE2);
    expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
    const p = await handle.query(progressQuery);
    expect(p.phase).toBe('aborted');
    expect(p.steps.find((s) => s.key === 'accept')?.state).toBe('compensated');
    expect(p.needsOperator).toBe(false);
    expect(c.cfg().reservations).toEqual({});
  });

  test('during the DRBD resync before the transfer: accepted, only the disks are reverted', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 5, reconnectResync: 600 } });
    const handle = await start(h.env(), c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.phase === 'dual-master');
    await abortOperation(h.env().client, handle.workflowId);
    const e = failure(await outcomeOf(operationResult(handle)));
    expect(e.type).toBe('Aborted');
    expect(e.message).toContain('aborted by the operator during dual-master; the disks were reverted; web1 stays on node1');
    expect(mutatingSteps(c, 'web1').some((s) => s.startsWith('accept_instance'))).toBe(false);
    expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('during a slow pre-hook: accepted, nothing is changed', async () => {
    const { c } = await h.cluster();
    const gate = c.gate('pre-hooks');
    c.hook('node1', 'instance-failover', 'pre', '10-slow', gate.body);
    const { startFailover } = await import('../../client/api.js');
    const handle = await startFailover(h.env().client, { instance: 'web1' }, { cluster: c.name });
    await waitForProgress(handle, (p) => p.phase === 'pre-hooks');
    await abortOperation(h.env().client, 'web1');
    gate.open();
    const e = failure(await outcomeOf(operationResult(handle)));
    expect(e.message).toBe('Failover web1: node1 → node2: aborted by the operator during pre-hooks; nothing was changed');
    expect(mutatingSteps(c, 'web1')).toEqual([]);
    expect(c.status('web1').runningOn).toEqual(['node1']);
  });

  test('after the point of no return: refused with the reason, and the migration rolls forward', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 10, reconnectResync: 1200 } });
    const handle = await start(h.env(), c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.pointOfNoReturn);
    const refused = await abortOperation(h.env().client, 'web1').then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(AbortRefusedError);
    expect((refused as Error).message).toBe(
      'the hypervisor reported the memory transfer to node2 complete: past the point of no return, the operation rolls forward',
    );
    const r = await outcomeOf(operationResult(handle));
    expect(r.ok && r.result.outcome).toBe('migrated');
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
    // A finished operation refuses too.
    await expect(abortOperation(h.env().client, 'web1')).rejects.toThrow('the operation instance/web1 has already finished (COMPLETED)');
  });

  test('an abort racing the point of no return: the transfer had completed, so the migration rolls forward', async () => {
    // Slow status polls: the hypervisor completes the transfer while the workflow does not know yet.
    const { c } = await h.cluster({ timing: { migrationPollMs: 2500, heartbeatTimeoutSec: 10 } });
    const handle = await start(h.env(), c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    for (let i = 0; i < 100 && c.status('web1').processes.node1?.migration !== 'completed to node2'; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(c.status('web1').processes.node1?.migration).toBe('completed to node2');
    expect(await abortOperation(h.env().client, 'web1')).toMatchObject({ accepted: true, phase: 'memory-transfer' });
    const r = await outcomeOf(operationResult(handle));
    expect(r.ok && r.result.outcome).toBe('migrated');
    expect(r.ok && r.result.feedback).toContain('The abort came too late: the memory transfer had completed; the migration rolls forward');
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('a failover refuses the abort once the instance is being shut down', async () => {
    const { c } = await h.cluster();
    await c.inject('web1', 'node1', 'unresponsive');
    const { startFailover } = await import('../../client/api.js');
    const handle = await startFailover(h.env().client, { instance: 'web1', shutdownTimeout: 60 }, { cluster: c.name });
    await waitForProgress(handle, (p) => p.phase === 'shutdown');
    await expect(abortOperation(h.env().client, 'web1')).rejects.toThrow(
      'the instance is being shut down on node1: past the point of no return, the operation rolls forward',
    );
    expect((await outcomeOf(operationResult(handle))).ok).toBe(true);
  });
});

describe('Web UI cancellation and termination', () => {
  test('Request Cancellation behaves like abort: compensations run, the workflow ends cancelled', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 4 } });
    const handle = await start(h.env(), c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    await handle.cancel();
    const err = await handle.result().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('Terminate skips compensation; the cleanup repairs what it left', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 4 } });
    const handle = await start(h.env(), c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    await handle.terminate('operator pressed Terminate');
    await new Promise((r) => setTimeout(r, 300));
    // Half-done: an incoming copy on node2, dual-primary disks.
    expect(c.status('web1').runningOn).toEqual(['node1', 'node2']);
    const fix = await outcomeOf(start(h.env(), c, { instance: 'web1', cleanup: true }).then((x) => operationResult(x)));
    expect(fix.ok, fix.ok ? '' : fix.error.message).toBe(true);
    expect(checkInvariants({ kind: 'cleaned-up' }, c.instance('web1'), c.status('web1'))).toEqual([]);
    // The terminated run's memory reservation is dropped by the next operation's start.
    expect(Object.values(c.cfg().reservations)).toEqual([]);
  });
});

describe('needs operator', () => {
  test('a failure that needs a human sets GanetiNeedsOperator and says which command repairs it', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'instance_finalize_migration_src', node: 'node1', mode: 'permanent' });
    const handle = await start(h.env(), c, { instance: 'web1' });
    const e = failure(await outcomeOf(operationResult(handle)));
    expect(e.message).toContain("run 'ganeti-temporal instance migrate --cleanup web1' to recover");
    const d = await handle.describe();
    expect(d.typedSearchAttributes.get(SA.needsOperator)).toBe(true);
    const p = await handle.query(progressQuery);
    expect(p).toMatchObject({ needsOperator: true, repair: "run 'ganeti-temporal instance migrate --cleanup web1'" });
    const info = await jobInfo(h.env().client, 'web1');
    expect(info).toMatchObject({ needsOperator: true, status: 'FAILED', failure: { type: 'ExecutionFailed' } });
  });

  test('a clean failure does not', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'accept_instance', mode: 'permanent' });
    const handle = await start(h.env(), c, { instance: 'web1' });
    failure(await outcomeOf(operationResult(handle)));
    expect((await handle.describe()).typedSearchAttributes.get(SA.needsOperator)).toBeUndefined();
  });
});

describe('what the Web UI shows', () => {
  test('summary, details, current details checklist, activity summaries, search attributes', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 5 } });
    const handle = await start(h.env(), c, { instance: 'web1', reason: 'rebalance' });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    const d = await handle.describe();
    expect(await d.staticSummary()).toBe('Migrate web1: node1 → node2, live');
    expect(await d.staticDetails()).toContain('**Reason:** rebalance');
    const meta = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
    expect(meta.currentDetails).toContain('### Migrate web1: node1 → node2, live');
    expect(meta.currentDetails).toContain('- ✔ Prepare node2 to accept the instance');
    expect(meta.currentDetails).toContain('- ▶ **Transfer the memory**');
    expect(meta.currentDetails).toContain('- ○ Set the primary node to node2');
    expect(meta.currentDetails).toContain('* starting memory transfer');
    expect(d.typedSearchAttributes.get(SA.sourceNode)).toBe('node1');
    expect(d.typedSearchAttributes.get(SA.targetNode)).toBe('node2');
    expect(d.typedSearchAttributes.get(SA.phase)).toBe('memory-transfer');

    // Operators can filter: every running operation touching node2.
    let running: string[] = [];
    for (let i = 0; i < 50 && running.length === 0; i++) {
      running = (await listJobs(h.env().client, { running: true }))
        .filter((j) => j.targetNode === 'node2' || j.sourceNode === 'node2')
        .map((j) => j.workflowId);
      if (!running.length) await new Promise((r) => setTimeout(r, 100));
    }
    expect(running).toEqual(['instance/web1']);

    // The progress query and the live progress of the wait.
    const info = await jobInfo(h.env().client, 'web1');
    expect(info.progress?.phase).toBe('memory-transfer');
    expect(info.progress?.percent).toBeGreaterThan(0);
    expect(info.progress?.feedbackTail.at(-1)).toMatch(/^\* (starting memory transfer|memory transfer progress: .*)$/);

    await operationResult(handle);
    const history = await handle.fetchHistory();
    const scheduled = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes);
    // (user metadata goes through the payload codec: decrypted with the test key)
    const summaries = (await Promise.all(
      scheduled
        .map((e) => e.userMetadata?.summary)
        .filter((p) => !!p)
        .map((p) => decodePayload(p!)),
    )) as string[];
    // Every activity carries a summary, the configuration ones included.
    expect(summaries).toHaveLength(scheduled.length);
    expect(summaries[0]).toBe('config: load the cluster configuration (instance web1)');
    expect(summaries).toContain('config: reserve 1024 MiB (at least 512) on node2 for web1');
    expect(summaries).toContain('config: primary node of web1 := node2 (commit point)');
    expect(summaries).toContain('config: release the target memory reservation');
    expect(summaries).toContain('node2: drbd_attach_net (dual-master)');
    expect(summaries).toContain('node2: accept_instance');
    expect(summaries).toContain('node1: instance_migrate (live)');
  });
});
