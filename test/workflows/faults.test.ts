/**
 * Failures at every step of `_ExecMigration` (docs/behaviour.md §5.4 "Failures and what they leave",
 * §6 "Abort and revert"): a permanent fault at each of M1–M14 leaves exactly the state those sections
 * describe, with compensation (abort + revert) only for accept / migrate / status polling; every
 * half-done state is repaired by `migrate --cleanup`. Transient faults at every step, and hanging
 * calls, still complete.
 */
import { describe, expect, test } from 'vitest';
import { cleanupCommand } from '../../domain/naming.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import type { FaultSpec } from '../../adapters/sim/faults.js';
import type { TestCluster } from '../helpers/cluster.js';
import { configShape, failure, hardwareShape, migrate, outcomeOf, start, useHarness, waitForProgress } from '../helpers/harness.js';
import { ABORT_AND_REVERT_NODE1_NODE2, mutatingSteps, stepsFromAbort } from '../helpers/steps.js';
import { operationResult } from '../../client/api.js';

const h = useHarness();
const HINT = `(the instance may be left half-migrated; run '${cleanupCommand('web1')}' to recover)`;

/** Clears the faults and runs the cleanup, which must leave a consistent instance on `primary`. */
async function expectCleanupRepairs(c: TestCluster, instance: string, primary: string): Promise<void> {
  await c.clearFaults();
  const r = await migrate(h.env(), c, { instance, cleanup: true });
  expect(r.ok && r.result.outcome, r.ok ? '' : r.error.message).toBe('cleaned-up');
  expect(c.instance(instance).primaryNode).toBe(primary);
  expect(checkInvariants({ kind: 'cleaned-up' }, c.instance(instance), c.status(instance))).toEqual([]);
}

function disk(c: TestCluster, instance: string, node: string) {
  return c.status(instance).disks[0]!.nodes[node]!;
}

describe('failures before any change (M1–M4) leave everything unchanged', () => {
  const cases: Array<[string, FaultSpec, string]> = [
    [
      'M1 node_info on the source',
      { rpc: 'node_info', node: 'node1', mode: 'permanent' },
      "Unable to retrieve node information from node 'node1': injected failure in node_info on node1",
    ],
    [
      'M2 blockdev_find on the target',
      { rpc: 'blockdev_find', node: 'node2', mode: 'permanent' },
      'Disk 0 is degraded or not fully synchronized on target node, aborting migration',
    ],
    [
      'M4 migration_info on the source',
      { rpc: 'migration_info', node: 'node1', mode: 'permanent' },
      'Failed fetching source migration information from node1: injected failure in migration_info on node1',
    ],
  ];
  test.each(cases)('%s', async (_step, fault, message) => {
    const { c } = await h.cluster();
    const cfg0 = configShape(c);
    const hw0 = hardwareShape(c);
    await c.addFault(fault);
    const f = failure(await migrate(h.env(), c, { instance: 'web1' }));
    expect(f).toMatchObject({ type: 'ExecutionFailed', message });
    expect(configShape(c)).toEqual(cfg0);
    expect(hardwareShape(c)).toEqual(hw0);
    expect(mutatingSteps(c, 'web1')).toEqual([]);
    expect(c.cfg().reservations).toEqual({});
  });

  test('M2 reports why a disk could not be checked', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'blockdev_find', node: 'node2', mode: 'permanent' });
    const f = failure(await migrate(h.env(), c, { instance: 'web1' }));
    expect(f.feedback).toContain(" - WARNING: Can't find disk on node node2: injected failure in blockdev_find on node2");
  });

  test('M2 refuses a degraded target disk', async () => {
    const { c } = await h.cluster();
    await c.inject('web1', 'node2', 'degraded');
    const f = failure(await migrate(h.env(), c, { instance: 'web1' }));
    expect(f.message).toBe('Disk 0 is degraded or not fully synchronized on target node, aborting migration');
    expect(c.instance('web1').primaryNode).toBe('node1');
    expect(c.status('web1').runningOn).toEqual(['node1']);
  });
});

describe('failures in M5–M7 are not rolled back and name --cleanup', () => {
  const cases: Array<[string, FaultSpec, string, (c: TestCluster) => void]> = [
    [
      'M5 closing the target disks',
      { rpc: 'blockdev_close', node: 'node2', mode: 'permanent' },
      'Cannot close instance disks on node node2: injected failure in blockdev_close on node2',
      (c) => expect(disk(c, 'web1', 'node2')).toMatchObject({ role: 'Secondary', connection: 'Connected' }),
    ],
    [
      'M6 going standalone',
      { rpc: 'drbd_disconnect_net', node: 'node2', mode: 'permanent' },
      'Cannot disconnect disks node node2: injected failure in drbd_disconnect_net on node2',
      (c) => {
        expect(disk(c, 'web1', 'node1').connection).toBe('StandAlone');
        expect(disk(c, 'web1', 'node2').connection).toBe('WFConnection');
      },
    ],
    [
      'M6 reconnecting dual-master',
      { rpc: 'drbd_attach_net', node: 'node2', mode: 'permanent' },
      'Cannot change disks config on node node1: Timeout in disk reconnecting',
      (c) => {
        expect(disk(c, 'web1', 'node1')).toMatchObject({ connection: 'WFConnection', dualPrimary: true });
        expect(disk(c, 'web1', 'node2').connection).toBe('StandAlone');
      },
    ],
    [
      'M6 waiting for the resync',
      { rpc: 'drbd_wait_sync', node: 'node2', mode: 'permanent' },
      'Cannot resync disks on node node2: injected failure in drbd_wait_sync on node2',
      (c) => expect(disk(c, 'web1', 'node2')).toMatchObject({ role: 'Secondary', connection: 'Connected', dualPrimary: true }),
    ],
    [
      'M7 opening the source disks',
      { rpc: 'blockdev_open', node: 'node1', mode: 'permanent' },
      'Cannot open instance disks on node node1: injected failure in blockdev_open on node1',
      // Both sides are opened at once (docs/behaviour.md §13.1): the target's open went through.
      (c) => expect(disk(c, 'web1', 'node2')).toMatchObject({ role: 'Primary', dualPrimary: true }),
    ],
    [
      'M7 opening the target disks',
      { rpc: 'blockdev_open', node: 'node2', mode: 'permanent' },
      'Cannot open instance disks on node node2: injected failure in blockdev_open on node2',
      (c) => expect(disk(c, 'web1', 'node2')).toMatchObject({ role: 'Secondary', dualPrimary: true }),
    ],
  ];
  test.each(cases)('%s', async (_step, fault, message, physical) => {
    const { c } = await h.cluster();
    await c.addFault(fault);
    const f = failure(await migrate(h.env(), c, { instance: 'web1' }));
    expect(f).toMatchObject({ type: 'ExecutionFailed', message: `${message} ${HINT}` });
    expect(f.feedback).not.toContain('Migration failed, aborting');
    expect(mutatingSteps(c, 'web1').some((s) => s.startsWith('accept_instance'))).toBe(false);
    expect(c.instance('web1').primaryNode).toBe('node1');
    expect(c.status('web1').runningOn).toEqual(['node1']);
    physical(c);
    await expectCleanupRepairs(c, 'web1', 'node1');
  });
});

describe('failures at accept, migrate and status polling abort and revert (M8–M10)', () => {
  const cases: Array<[string, FaultSpec, string, string]> = [
    [
      'M8 accept',
      { rpc: 'accept_instance', node: 'node2', mode: 'permanent' },
      'Pre-migration failed, aborting',
      'Could not pre-migrate instance web1: injected failure in accept_instance on node2',
    ],
    [
      'M9 migrate',
      { rpc: 'instance_migrate', node: 'node1', mode: 'permanent' },
      'Migration failed, aborting',
      'Could not migrate instance web1: injected failure in instance_migrate on node1',
    ],
    [
      'M10 status',
      { rpc: 'instance_get_migration_status', node: 'node1', mode: 'permanent' },
      'Migration failed, aborting',
      'Could not migrate instance web1: injected failure in instance_get_migration_status on node1',
    ],
  ];
  test.each(cases)('%s', async (_step, fault, line, message) => {
    // A slow transfer: it must not complete before the abort (a completed one would roll forward).
    const { c } = await h.cluster({ sim: { timeFactor: 2 } });
    await c.addFault(fault);
    const f = failure(await migrate(h.env(), c, { instance: 'web1' }));
    expect(f).toMatchObject({ type: 'ExecutionFailed', message });
    const at = f.feedback.indexOf(line);
    expect(at).toBeGreaterThan(0);
    expect(f.feedback.slice(at)).toEqual([
      line,
      '* closing instance disks on node node2',
      '* changing into standalone mode',
      '* changing disks into single-master mode',
      '* wait until resync is done',
    ]);
    expect(stepsFromAbort(c, 'web1')).toEqual(ABORT_AND_REVERT_NODE1_NODE2);
    expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
    expect(c.cfg().reservations).toEqual({});
  });

  test('the hypervisor reporting a failed migration aborts with "hypervisor returned failure"', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 5 } });
    const handle = await start(h.env(), c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    await c.inject('web1', 'node2', 'stopped'); // the destination process dies mid-transfer
    const f = failure(await outcomeOf(operationResult(handle)));
    expect(f.message).toBe('Could not migrate instance web1: hypervisor returned failure');
    expect(f.feedback).toContain('Migration failed, aborting');
    expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('a non-live migration that fails resumes the paused source', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 2 } });
    await c.addFault({ rpc: 'instance_get_migration_status', node: 'node1', mode: 'permanent' });
    failure(await migrate(h.env(), c, { instance: 'web1', mode: 'non-live' }));
    expect(c.status('web1').processes).toEqual({ node1: { state: 'running' } });
    expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('a sharedfile instance reverts to exclusive use on the source', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'accept_instance', node: 'node3', mode: 'permanent' });
    const f = failure(await migrate(h.env(), c, { instance: 'files1', targetNode: 'node3' }));
    expect(f.feedback.slice(f.feedback.indexOf('Pre-migration failed, aborting'))).toEqual([
      'Pre-migration failed, aborting',
      '* closing instance disks on node node3',
      '* opening instance disks on node node2 in exclusive mode',
    ]);
    expect(checkInvariants({ kind: 'reverted', source: 'node2', target: 'node3' }, c.instance('files1'), c.status('files1'))).toEqual([]);
  });

  test('a close failure during the revert replaces the migration error', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'accept_instance', node: 'node2', mode: 'permanent' });
    await c.addFault({ rpc: 'blockdev_close', node: 'node2', mode: 'permanent', skip: 1 });
    const f = failure(await migrate(h.env(), c, { instance: 'web1' }));
    expect(f.message).toBe(`Cannot close instance disks on node node2: injected failure in blockdev_close on node2 ${HINT}`);
    expect(c.instance('web1').primaryNode).toBe('node1');
    expect(disk(c, 'web1', 'node2')).toMatchObject({ role: 'Primary', dualPrimary: true });
    await expectCleanupRepairs(c, 'web1', 'node1');
  });

  test('a reconnect failure during the revert is a warning and the migration error stands', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'accept_instance', node: 'node2', mode: 'permanent' });
    await c.addFault({ rpc: 'drbd_disconnect_net', node: 'node2', mode: 'permanent', skip: 1 });
    const f = failure(await migrate(h.env(), c, { instance: 'web1' }));
    expect(f.message).toBe('Could not pre-migrate instance web1: injected failure in accept_instance on node2');
    expect(f.feedback).toContain(
      " - WARNING: Migration failed and I can't reconnect the drives, please try to recover the instance manually; " +
        "error 'Cannot disconnect disks node node2: injected failure in drbd_disconnect_net on node2'",
    );
    expect(c.instance('web1').primaryNode).toBe('node1');
    expect(c.status('web1').runningOn).toEqual(['node1']);
    await expectCleanupRepairs(c, 'web1', 'node1');
  });
});

describe('failures after the point of no return are not rolled back (M11–M14)', () => {
  test('M11 finalize on the source: running on both, configuration still names the source', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'instance_finalize_migration_src', node: 'node1', mode: 'permanent' });
    const f = failure(await migrate(h.env(), c, { instance: 'web1' }));
    expect(f.message).toBe(
      `Could not finalize instance migration: node1: injected failure in instance_finalize_migration_src on node1 ${HINT}`,
    );
    // Both finalizes are always attempted.
    expect(mutatingSteps(c, 'web1')).toContain('instance_finalize_migration_dst(success)@node2');
    expect(c.instance('web1').primaryNode).toBe('node1');
    expect(c.status('web1').processes).toEqual({
      node1: { state: 'paused', paused: 'postmigrate', migration: 'completed to node2' },
      node2: { state: 'running' },
    });
    // The transfer had completed: the cleanup finishes the migration (Ganeti would resume the stale source).
    await expectCleanupRepairs(c, 'web1', 'node2');
  });

  test('M11 finalize on the target: the instance runs on the target, configuration still names the source', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'instance_finalize_migration_dst', node: 'node2', mode: 'permanent' });
    const f = failure(await migrate(h.env(), c, { instance: 'web1' }));
    expect(f.message).toBe(
      `Could not finalize instance migration: node2: injected failure in instance_finalize_migration_dst on node2 ${HINT}`,
    );
    expect(c.instance('web1').primaryNode).toBe('node1');
    expect(c.status('web1').runningOn).toEqual(['node2']);
    await expectCleanupRepairs(c, 'web1', 'node2');
  });

  test('M13 closing the source disks: the configuration already names the target', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'blockdev_close', node: 'node1', mode: 'permanent' });
    const f = failure(await migrate(h.env(), c, { instance: 'web1' }));
    expect(f.message).toBe(`Cannot close instance disks on node node1: injected failure in blockdev_close on node1 ${HINT}`);
    expect(c.instance('web1').primaryNode).toBe('node2');
    expect(c.status('web1').runningOn).toEqual(['node2']);
    expect(disk(c, 'web1', 'node1')).toMatchObject({ role: 'Primary', dualPrimary: true });
    await expectCleanupRepairs(c, 'web1', 'node2');
  });

  test('M14 waiting for the resync', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 10 } });
    const handle = await start(h.env(), c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    await c.addFault({ rpc: 'drbd_wait_sync', node: 'node2', mode: 'permanent' });
    const f = failure(await outcomeOf(operationResult(handle)));
    expect(f.message).toBe(`Cannot resync disks on node node2: injected failure in drbd_wait_sync on node2 ${HINT}`);
    expect(c.instance('web1').primaryNode).toBe('node2');
    await expectCleanupRepairs(c, 'web1', 'node2');
  });

  test('M14 going standalone', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'drbd_disconnect_net', node: 'node1', mode: 'permanent', skip: 1 });
    const f = failure(await migrate(h.env(), c, { instance: 'web1' }));
    expect(f.message).toBe(`Cannot disconnect disks node node1: injected failure in drbd_disconnect_net on node1 ${HINT}`);
    expect(c.instance('web1').primaryNode).toBe('node2');
    await expectCleanupRepairs(c, 'web1', 'node2');
  });

  test('M14 reconnecting single-master', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'drbd_attach_net', node: 'node1', mode: 'permanent', skip: 1 });
    const f = failure(await migrate(h.env(), c, { instance: 'web1' }));
    expect(f.message).toBe(`Cannot change disks config on node node1: injected failure in drbd_attach_net on node1 ${HINT}`);
    expect(c.instance('web1').primaryNode).toBe('node2');
    expect(disk(c, 'web1', 'node1').connection).toBe('StandAlone');
    await expectCleanupRepairs(c, 'web1', 'node2');
  });

  test('M14 opening a sharedfile disk exclusively on the target (M15 has nothing to unmap for sharedfile)', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'blockdev_open', node: 'node3', mode: 'permanent', skip: 1 });
    const f = failure(await migrate(h.env(), c, { instance: 'files1', targetNode: 'node3' }));
    expect(f.message).toBe(
      `Cannot open instance disks on node node3: injected failure in blockdev_open on node3 (the instance may be left half-migrated; run '${cleanupCommand('files1')}' to recover)`,
    );
    expect(c.instance('files1').primaryNode).toBe('node3');
    expect(c.status('files1').runningOn).toEqual(['node3']);
    await c.clearFaults();
    const r = await migrate(h.env(), c, { instance: 'files1', cleanup: true, targetNode: 'node2' });
    expect(r.ok).toBe(true);
    expect(checkInvariants({ kind: 'cleaned-up' }, c.instance('files1'), c.status('files1'))).toEqual([]);
  });
});

describe('transient faults and hanging calls', () => {
  const RPCS = [
    'node_info',
    'bridges_exist',
    'instance_migratable',
    'instance_info',
    'blockdev_find',
    'migration_info',
    'blockdev_close',
    'drbd_disconnect_net',
    'drbd_attach_net',
    'drbd_wait_sync',
    'blockdev_open',
    'accept_instance',
    'instance_migrate',
    'instance_get_migration_status',
    'instance_finalize_migration_src',
    'instance_finalize_migration_dst',
  ];

  test('a transient fault at every step is retried and the migration completes', async () => {
    const { c } = await h.cluster();
    for (const rpc of RPCS) await c.addFault({ rpc, mode: 'transient' });
    const r = await migrate(h.env(), c, { instance: 'web1' });
    expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
    expect(Object.fromEntries(c.state().faults.map((f) => [f.rpc, f.hits]))).toEqual(Object.fromEntries(RPCS.map((x) => [x, 1])));
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
    // Retries re-attach instead of repeating: each state change happened once.
    expect(mutatingSteps(c, 'web1').filter((s) => s.startsWith('accept_instance') || s.startsWith('instance_migrate'))).toHaveLength(2);
  });

  test('a transient fault twice in a row on a long wait is still retried', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'instance_get_migration_status', mode: 'transient', times: 2, skip: 3 });
    const r = await migrate(h.env(), c, { instance: 'web1' });
    expect(r.ok).toBe(true);
    expect(c.state().faults[0]!.hits).toBe(2);
  });

  test('a hanging accept times out and the retry completes the migration', async () => {
    const { c } = await h.cluster({ timing: { rpcTimeouts: { urgent: 10, normal: 1.5, slow: 30 } } });
    await c.addFault({ rpc: 'accept_instance', node: 'node2', mode: 'hang', times: 1 });
    const r = await migrate(h.env(), c, { instance: 'web1' });
    expect(r.ok).toBe(true);
    expect(c.state().faults[0]!.hits).toBe(1);
    expect(c.log({ rpc: 'accept_instance', outcome: 'ok' })).toHaveLength(1);
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('a status poll that never answers exhausts its retries; the transfer completed meanwhile, so nothing kills the guest', async () => {
    const { c } = await h.cluster({
      timing: { heartbeatTimeoutSec: 1, retryMaximumAttempts: 2, rpcTimeouts: { urgent: 1, normal: 20, slow: 30 } },
    });
    await c.addFault({ rpc: 'instance_get_migration_status', node: 'node1', mode: 'hang' });
    const f = failure(await migrate(h.env(), c, { instance: 'web1' }));
    // Two attempts of the wait, then the one probe (bounded by the urgent timeout) before aborting:
    // it gets no answer either, so the abort is tried — and refused by both nodes, since the transfer
    // had completed (Ganeti would kill the running target and resume the stale source).
    expect(c.state().faults[0]!.hits).toBe(3);
    expect(f.feedback).toContain('Migration failed, aborting');
    expect(c.status('web1').processes).toEqual({
      node1: { state: 'paused', paused: 'postmigrate', migration: 'completed to node2' },
      node2: { state: 'running' },
    });
    expect(f.message).toContain(HINT);
    await expectCleanupRepairs(c, 'web1', 'node2');
  });
});
