/**
 * Migration cleanup (`_ExecCleanup`, docs/behaviour.md §7 "Migration cleanup"): the instance runs on
 * its primary, on its secondary, on both, on neither, or on one unexpected node; the configuration
 * follows the hardware and the DRBD roles are rebuilt. Refusals leave the configuration untouched.
 */
import { describe, expect, test } from 'vitest';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { configShape, failure, migrate, useHarness } from '../helpers/harness.js';
import { mutatingSteps, withoutProgress } from '../helpers/steps.js';

const h = useHarness();

const LOCATE = '* checking where the instance actually runs (if this hangs, the hypervisor might be in a bad state)';

describe('cleanup', () => {
  test('running on the primary: confirms it and rebuilds DRBD with the secondary demoted', async () => {
    const { c } = await h.cluster();
    await c.inject('web1', 'node1', 'standalone'); // what a failure in M6 leaves behind
    const cfg0 = configShape(c);
    const r = await migrate(h.env(), c, { instance: 'web1', cleanup: true });
    expect(r.ok && r.result).toMatchObject({ outcome: 'cleaned-up', sourceNode: 'node1', targetNode: 'node2' });
    expect(r.ok && withoutProgress(r.result.feedback)).toEqual([
      ' - INFO: Not checking memory on the secondary node as instance will not be started',
      'Migrating instance web1',
      LOCATE,
      '* instance running on: node1',
      '* instance confirmed to be running on its primary node (node1)',
      '* closing instance disks on node node2',
      '* wait until resync is done',
      '* changing into standalone mode',
      '* changing disks into single-master mode',
      '* wait until resync is done',
      '* done',
    ]);
    expect(configShape(c)).toEqual(cfg0);
    expect(checkInvariants({ kind: 'cleaned-up' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('is harmless on a healthy instance', async () => {
    const { c } = await h.cluster();
    const r = await migrate(h.env(), c, { instance: 'web2', cleanup: true });
    expect(r.ok).toBe(true);
    expect(c.instance('web2').primaryNode).toBe('node2');
    expect(checkInvariants({ kind: 'cleaned-up' }, c.instance('web2'), c.status('web2'))).toEqual([]);
  });

  test('running on the secondary: the configuration is updated to it', async () => {
    const { c } = await h.cluster();
    // What a failed finalize on the target leaves: the source copy is gone, the target runs.
    await c.addFault({ rpc: 'instance_finalize_migration_dst', node: 'node2', mode: 'permanent' });
    failure(await migrate(h.env(), c, { instance: 'web1' }));
    await c.clearFaults();
    expect(c.instance('web1').primaryNode).toBe('node1');
    const r = await migrate(h.env(), c, { instance: 'web1', cleanup: true });
    expect(r.ok && withoutProgress(r.result.feedback).slice(2, 6)).toEqual([
      LOCATE,
      '* instance running on: node2',
      '* instance running on secondary node (node2), updating config',
      '* closing instance disks on node node1',
    ]);
    expect(c.instance('web1').primaryNode).toBe('node2');
    expect(checkInvariants({ kind: 'cleaned-up' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('running on both and the abort fails: refuses, configuration untouched', async () => {
    const { c } = await h.cluster();
    await c.inject('web1', 'node2', 'running');
    await c.addFault({ rpc: 'instance_finalize_migration_dst', node: 'node2', mode: 'permanent' });
    const cfg0 = configShape(c);
    const e = failure(await migrate(h.env(), c, { instance: 'web1', cleanup: true }));
    expect(e.message).toBe('Instance migration cleanup failed: injected failure in instance_finalize_migration_dst on node2');
    expect(configShape(c)).toEqual(cfg0);
    expect(c.status('web1').runningOn).toEqual(['node1', 'node2']);
  });

  test('running nowhere: refuses, configuration untouched', async () => {
    const { c } = await h.cluster();
    await c.inject('web1', 'node1', 'stopped');
    const cfg0 = configShape(c);
    const e = failure(await migrate(h.env(), c, { instance: 'web1', cleanup: true }));
    expect(e.type).toBe('ExecutionFailed');
    expect(e.message).toBe(
      "Instance does not seem to be running at all; in this case it's safer to repair by running 'gnt-instance stop' " +
        'to ensure disk shutdown, and then restarting it',
    );
    expect(configShape(c)).toEqual(cfg0);
    expect(mutatingSteps(c, 'web1')).toEqual([]);
  });

  test('running on the target and on an unexpected node: refuses rather than lose track of a copy', async () => {
    const { c } = await h.cluster();
    await c.inject('files1', 'node2', 'stopped');
    await c.inject('files1', 'node1', 'running');
    await c.inject('files1', 'node3', 'running');
    const cfg0 = configShape(c);
    const e = failure(await migrate(h.env(), c, { instance: 'files1', cleanup: true, targetNode: 'node3' }));
    expect(e.message).toBe(
      'Instance runs on node1, node3: besides node3 it also runs on unexpected node(s) node1; stop the extra copies by hand and run the cleanup again',
    );
    expect(configShape(c)).toEqual(cfg0);
  });

  test('sharedfile running on one unexpected node: adopts it', async () => {
    const { c } = await h.cluster();
    await c.inject('files1', 'node2', 'stopped');
    await c.inject('files1', 'node3', 'running');
    const r = await migrate(h.env(), c, { instance: 'files1', cleanup: true, targetNode: 'node1' });
    expect(r.ok && withoutProgress(r.result.feedback).slice(2, 7)).toEqual([
      LOCATE,
      '* instance running on: node3',
      '* instance running on unexpected node (node3), updating as the new secondary',
      '* instance running on secondary node (node3), updating config',
      '* closing instance disks on node node2',
    ]);
    expect(r.ok && r.result.targetNode).toBe('node3');
    expect(c.instance('files1').primaryNode).toBe('node3');
    expect(checkInvariants({ kind: 'cleaned-up' }, c.instance('files1'), c.status('files1'))).toEqual([]);
  });

  test('DRBD running on a node without its disks is not adopted', async () => {
    const { c } = await h.cluster();
    await c.inject('web1', 'node1', 'stopped');
    await c.inject('web1', 'node3', 'running');
    const cfg0 = configShape(c);
    const e = failure(await migrate(h.env(), c, { instance: 'web1', cleanup: true }));
    expect(e.message).toBe(
      'Instance runs on node3, which holds none of its DRBD disks (they are on node1 and node2); it cannot be adopted there: ' +
        'stop that copy by hand and run the cleanup again',
    );
    expect(configShape(c)).toEqual(cfg0);
  });

  test('an unreachable online node stops the cleanup before any change', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'instance_list', node: 'node3', mode: 'permanent' });
    const cfg0 = configShape(c);
    const e = failure(await migrate(h.env(), c, { instance: 'web1', cleanup: true }));
    expect(e.message).toBe("Can't contact node node3: injected failure in instance_list on node3");
    expect(configShape(c)).toEqual(cfg0);
    expect(mutatingSteps(c, 'web1')).toEqual([]);
  });
});
