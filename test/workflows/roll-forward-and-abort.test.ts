/**
 * The workflow-level guarantees behind crash safety, tested in-process without killing anything (the
 * SIGKILL tests are test/crash/kill-9.test.ts and `npm run chaos`): a completed memory transfer is never undone (the
 * workflow and the cleanup roll forward; the nodes refuse to kill the current copy or resume a stale
 * one), an accepted abort always takes effect, one node's failed resync wait ends the wait at once,
 * and memory reservations are released at the commit point and never fail a good operation.
 */
import { describe, expect, test } from 'vitest';
import { operationResult, startFailover } from '../../client/api.js';
import { abortOperation } from '../../client/jobs.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { cleanupCommand } from '../../domain/naming.js';
import { createOrchestratorActivities } from '../../activities/index.js';
import { sqliteEngine } from '../../adapters/store/engines.js';
import { databasePath } from '../../adapters/store/open.js';
import { SqlConfigStore } from '../../adapters/store/sql-store.js';
import { ConfigError } from '../../domain/ports.js';
import { cli } from '../helpers/cli.js';
import { configShape, failure, migrate, outcomeOf, start, useHarness, waitForProgress } from '../helpers/harness.js';
import { mutatingSteps } from '../helpers/steps.js';

const h = useHarness();

describe('a completed memory transfer is never undone', () => {
  test('the wait for the transfer fails, but the transfer had completed: the migration rolls forward', async () => {
    const { c } = await h.cluster();
    // Every attempt of the status polling hangs until its heartbeat times out; the hypervisor
    // meanwhile completes the transfer. The workflow asks the source once more before undoing it.
    await c.addFault({ rpc: 'instance_get_migration_status', node: 'node1', mode: 'hang', times: 3 });
    const r = await migrate(h.env(), c, { instance: 'web1' });
    expect(r.ok && r.result.outcome).toBe('migrated');
    expect(r.ok && r.result.feedback).toContain('* the memory transfer to node2 had completed after all: rolling forward');
    expect(mutatingSteps(c, 'web1').filter((s) => s.includes('finalize'))).toEqual([
      'instance_finalize_migration_src(success)@node1',
      'instance_finalize_migration_dst(success)@node2',
    ]);
    expect(c.instance('web1').primaryNode).toBe('node2');
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
    expect(c.cfg().reservations).toEqual({});
  });

  test('the source finalize fails after the transfer: --cleanup finishes the migration on the target', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'instance_finalize_migration_src', node: 'node1', mode: 'permanent' });
    const e = failure(await migrate(h.env(), c, { instance: 'web1' }));
    expect(e.message).toContain('Could not finalize instance migration');
    await c.clearFaults();
    expect(c.status('web1').runningOn).toEqual(['node1', 'node2']);
    const since = c.state().logSeq;

    const r = await migrate(h.env(), c, { instance: 'web1', cleanup: true });
    expect(r.ok && r.result.outcome).toBe('cleaned-up');
    expect(r.ok && r.result.feedback).toContain(
      '* the memory transfer to node2 had completed: the copy on node2 is the current one, finishing the migration',
    );
    expect(mutatingSteps(c, 'web1', since).slice(0, 2)).toEqual([
      'instance_finalize_migration_src(success)@node1',
      'instance_finalize_migration_dst(success)@node2',
    ]);
    expect(c.status('web1').runningOn).toEqual(['node2']);
    expect(c.instance('web1').primaryNode).toBe('node2');
    expect(checkInvariants({ kind: 'cleaned-up' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('running on both without a completed transfer: the target copy is not killed, a human decides', async () => {
    const { c } = await h.cluster();
    await c.inject('web1', 'node2', 'running');
    const cfg0 = configShape(c);
    const e = failure(await migrate(h.env(), c, { instance: 'web1', cleanup: true }));
    expect(e.message).toBe(
      'Instance migration cleanup failed: Failed to finalize migration on the target node: instance web1 runs here (running) ' +
        `and may be the only current copy, refusing to stop it: run '${cleanupCommand('web1')}'`,
    );
    expect(configShape(c)).toEqual(cfg0);
    expect(c.status('web1').runningOn).toEqual(['node1', 'node2']);
  });
});

describe('an accepted abort always takes effect', () => {
  test('accepted before the first activity: the operation ends aborted and nothing moves', async () => {
    const { c, w } = await h.cluster();
    await w.stop(w.orch!);
    const handle = await start(h.env(), c, { instance: 'web1' });
    // The update waits for a worker: it is delivered with the workflow's very first task.
    const accepted = abortOperation(h.env().client, 'web1', 'changed my mind');
    await new Promise((r) => setTimeout(r, 500));
    await w.orchestrator();
    expect(await accepted).toMatchObject({ accepted: true, phase: 'prerequisites' });
    const e = failure(await outcomeOf(operationResult(handle)));
    expect(e.type).toBe('Aborted');
    expect(e.message).toBe('Migrate web1: aborted by the operator during prerequisites (changed my mind); nothing was changed');
    expect(mutatingSteps(c, 'web1')).toEqual([]);
    expect(c.status('web1').runningOn).toEqual(['node1']);
    expect(c.cfg().reservations).toEqual({});
  });

  test('during the pre-hooks of a sharedfile failover (no cancellable step before the shutdown)', async () => {
    const { c } = await h.cluster();
    const gate = c.gate('pre-hooks');
    // Failover pre-hooks run on the master, the secondaries and the target, never on the source (behaviour §9.1).
    c.hook('node1', 'instance-failover', 'pre', '10-slow', gate.body);
    const handle = await startFailover(h.env().client, { instance: 'files1', targetNode: 'node3' }, { cluster: c.name });
    await waitForProgress(handle, (p) => p.phase === 'pre-hooks');
    await abortOperation(h.env().client, 'files1');
    gate.open();
    const e = failure(await outcomeOf(operationResult(handle)));
    expect(e.message).toBe('Failover files1: node2 → node3: aborted by the operator during pre-hooks; nothing was changed');
    expect(mutatingSteps(c, 'files1')).toEqual([]);
    expect(c.status('files1').runningOn).toEqual(['node2']);
    expect(c.instance('files1').primaryNode).toBe('node2');
  });

  test('while the cleanup locates the instance: ended before the cleanup changes anything', async () => {
    const { c } = await h.cluster();
    // node3's instance list does not answer until the call is cancelled (it heartbeats meanwhile).
    await c.addFault({ rpc: 'instance_list', node: 'node3', mode: 'hang', times: 1 });
    await c.inject('web1', 'node2', 'running');
    const cfg0 = configShape(c);
    const handle = await start(h.env(), c, { instance: 'web1', cleanup: true });
    await waitForProgress(handle, (p) => p.phase === 'locate');
    expect(await abortOperation(h.env().client, 'web1')).toMatchObject({ accepted: true, phase: 'locate' });
    const e = failure(await outcomeOf(operationResult(handle)));
    expect(e.type).toBe('Aborted');
    expect(e.message).toBe('Cleanup of web1: node1 → node2, live: aborted by the operator during locate; nothing was changed');
    expect(configShape(c)).toEqual(cfg0);
    expect(mutatingSteps(c, 'web1')).toEqual([]);
    expect(c.status('web1').runningOn).toEqual(['node1', 'node2']);
  });

  test('during the pre-hooks of a failover of an instance with inactive disks', async () => {
    const { c } = await h.cluster({
      configure: (cfg) => {
        const web1 = cfg.instances.web1!;
        web1.adminState = 'down';
        web1.disksActive = false;
      },
    });
    const gate = c.gate('pre-hooks');
    c.hook('node1', 'instance-failover', 'pre', '10-slow', gate.body);
    const handle = await startFailover(h.env().client, { instance: 'web1' }, { cluster: c.name });
    await waitForProgress(handle, (p) => p.phase === 'pre-hooks');
    await abortOperation(h.env().client, 'web1');
    gate.open();
    const e = failure(await outcomeOf(operationResult(handle)));
    expect(e.message).toBe('Failover web1: node1 → node2: aborted by the operator during pre-hooks; nothing was changed');
    expect(mutatingSteps(c, 'web1')).toEqual([]);
    expect(c.instance('web1').primaryNode).toBe('node1');
    expect(c.instance('web1').disksActive).toBe(false);
  });
});

describe('waiting for the resync', () => {
  test("one node's failed wait ends the wait at once: the other node's long resync is not waited for", async () => {
    // A cleanup that rebuilds DRBD after a split: the reconnect starts a two-hour resync (at this
    // speed) on node1, while node2's wait fails at once.
    const { c } = await h.cluster({ sim: { timeFactor: 50, reconnectResync: 360_000 } });
    await c.inject('web1', 'node1', 'standalone');
    await c.addFault({ rpc: 'drbd_wait_sync', node: 'node2', mode: 'permanent' });
    const handle = await start(h.env(), c, { instance: 'web1', cleanup: true });
    const e = failure(await outcomeOf(operationResult(handle)));
    expect(e.message).toBe('Cannot resync disks on node node2: injected failure in drbd_wait_sync on node2');
    // node1's wait was cancelled, not waited for: its resync still runs.
    const history = await handle.fetchHistory();
    expect((history.events ?? []).some((ev) => ev.activityTaskCancelRequestedEventAttributes)).toBe(true);
    expect(['SyncSource', 'SyncTarget']).toContain(c.status('web1').disks[0]!.nodes.node1!.connection);
  });
});

describe('memory reservations', () => {
  test('node info shows the memory a running operation holds on the node, and which workflow holds it', async () => {
    const { c } = await h.cluster();
    const gate = c.gate('pre-hooks');
    c.hook('node1', 'instance-migrate', 'pre', '10-slow', gate.body); // the reservation is taken before the pre-hooks
    const handle = await start(h.env(), c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.phase === 'pre-hooks');
    const env = { GANETI_TEMPORAL_HOME: c.home, TEMPORAL_ADDRESS: h.env().address, TEMPORAL_NAMESPACE: 'default' };
    const info = (await cli(['node', 'info', 'node2', '--json'], env)).json() as { reservations: unknown[] };
    expect(info.reservations).toEqual([{ instance: 'web1', memory: 1024, workflowId: 'instance/web1', runId: handle.firstExecutionRunId }]);
    const text = await cli(['node', 'info', 'node2'], env);
    expect(text.stdout).toContain(`  memory reserved: 1024 MiB for web1 by instance/web1 (run ${handle.firstExecutionRunId})`);
    expect((await cli(['node', 'info', 'node3', '--json'], env)).json()).toMatchObject({ reservations: [] });
    gate.open();
    expect((await outcomeOf(operationResult(handle))).ok).toBe(true);
  });

  test('released right after the commit point, not after the final resync', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 10, reconnectResync: 1500 } });
    const handle = await start(h.env(), c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.phase === 'sync');
    expect(Object.values(c.cfg().reservations).map((r) => r.node)).toEqual(['node2']);
    await waitForProgress(handle, (p) => p.phase === 'settle-sync');
    expect(c.cfg().reservations).toEqual({});
    expect((await outcomeOf(operationResult(handle))).ok).toBe(true);
  });

  test('a release that fails is a warning, never a failed operation; the next operation on its node drops the reservation', async () => {
    const { c, w } = await h.cluster();
    // The configuration store refuses the release (as a store that lost its database would).
    class RefusingRelease extends SqlConfigStore {
      override releaseReservation(): Promise<void> {
        return Promise.reject(new ConfigError('the configuration store refused the write', 'invalid'));
      }
    }
    await w.stop(w.orch!);
    await w.orchestrator({ activities: createOrchestratorActivities({ config: new RefusingRelease(sqliteEngine(databasePath(c.home))) }) });
    const r = await migrate(h.env(), c, { instance: 'web1' });
    expect(r.ok && r.result.outcome).toBe('migrated');
    expect(r.ok && r.result.feedback).toContain(
      ' - WARNING: Could not release the memory reservation: the configuration store refused the write; it is dropped when the next operation starts',
    );
    expect(Object.values(c.cfg().reservations).map((x) => x.instance)).toEqual(['web1']);
    await w.stop(w.orch!);
    await w.orchestrator();
    // An operation on other nodes leaves it (it prunes only its own nodes); the next one on node2 drops it.
    const other = await migrate(h.env(), c, { instance: 'web3', dryRun: true });
    expect(other.ok && other.result.outcome).toBe('dry-run');
    expect(Object.values(c.cfg().reservations).map((x) => x.instance)).toEqual(['web1']);
    const next = await migrate(h.env(), c, { instance: 'web2', dryRun: true });
    expect(next.ok && next.result.outcome).toBe('dry-run');
    expect(c.cfg().reservations).toEqual({});
  });

  test('a reservation of a run the server does not know is dropped by the next operation on its node', async () => {
    const { c } = await h.cluster();
    await c.config.update((cfg) => {
      cfg.reservations['instance/ghost@00000000-0000-4000-8000-000000000000'] = {
        node: 'node2',
        memory: 512,
        instance: 'web1',
        workflowId: 'instance/ghost',
        runId: '00000000-0000-4000-8000-000000000000',
      };
    });
    const r = await migrate(h.env(), c, { instance: 'web2', dryRun: true }); // node2 → node3
    expect(r.ok && r.result.outcome).toBe('dry-run');
    expect(c.cfg().reservations).toEqual({});
  });
});
