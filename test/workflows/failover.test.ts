/**
 * Failover (`_ExecFailover`, docs/behaviour.md §8 "Failover") and the migrate → failover fallback
 * (docs/behaviour.md §3 "Prerequisite checks, in order", checks #2, #7, #10), on a real dev server over
 * the simulated cluster.
 */
import { describe, expect, test } from 'vitest';
import { failoverInstance, InstanceBusyError, operationResult, startupInstance } from '../../client/api.js';
import { progressQuery } from '../../workflows/messages.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import type { FailoverInput } from '../../domain/ops.js';
import { setPower } from '../../adapters/sim/cluster.js';
import type { TestCluster } from '../helpers/cluster.js';
import { configShape, failure, hardwareShape, migrate, outcomeOf, start, useHarness, type Outcome } from '../helpers/harness.js';
import { mutatingSteps } from '../helpers/steps.js';
import { startFailover } from '../../client/api.js';

const h = useHarness();

const failover = (c: TestCluster, input: FailoverInput): Promise<Outcome> =>
  outcomeOf(failoverInstance(h.env().client, input, { cluster: c.name }));

const markDown = (name: string) => (cfg: { instances: Record<string, { adminState: string; disksActive: boolean }> }) => {
  cfg.instances[name]!.adminState = 'down';
  cfg.instances[name]!.disksActive = false;
};

describe('failover', () => {
  test('a running DRBD instance: shut down, disks swapped, started on the secondary', async () => {
    const { c } = await h.cluster();
    const r = await failover(c, { instance: 'web1', reason: 'node1 maintenance' });
    expect(r.ok && r.result).toMatchObject({ outcome: 'failed-over', sourceNode: 'node1', targetNode: 'node2' });
    expect(r.ok && r.result.feedback).toEqual([
      'Failover instance web1',
      '* checking disk consistency between source and target',
      '* shutting down instance on source node',
      "* deactivating the instance's disks on source node",
      "* activating the instance's disks on target node node2",
      '* starting the instance on the target node node2',
    ]);
    expect(mutatingSteps(c, 'web1')).toEqual([
      'instance_shutdown(node1 maintenance)@node1',
      'blockdev_shutdown@node1+node2',
      'blockdev_assemble(secondary)@node1+node2',
      'blockdev_assemble(primary)@node2',
      'instance_start(node1 maintenance)@node2',
    ]);
    expect(c.instance('web1')).toMatchObject({ primaryNode: 'node2', disksActive: true, adminState: 'up' });
    expect(
      checkInvariants({ kind: 'failed-over', source: 'node1', target: 'node2', sourceOnline: true }, c.instance('web1'), c.status('web1')),
    ).toEqual([]);
    // After the failover the disks are connected with the roles swapped.
    expect(c.status('web1').disks[0]!.nodes).toMatchObject({
      node1: { role: 'Secondary', connection: 'Connected' },
      node2: { role: 'Primary', connection: 'Connected' },
    });
  });

  test('an admin-down instance: the primary is swapped, nothing is started, the disks stay inactive', async () => {
    const { c } = await h.cluster({ configure: markDown('web1') });
    const r = await failover(c, { instance: 'web1' });
    expect(r.ok && r.result.feedback).toEqual([
      ' - INFO: Not checking memory on the secondary node as instance will not be started',
      'Failover instance web1',
      '* not checking disk consistency as instance is not running',
      '* shutting down instance on source node',
      "* deactivating the instance's disks on source node",
    ]);
    expect(c.instance('web1')).toMatchObject({ primaryNode: 'node2', disksActive: false, adminState: 'down' });
    expect(c.cfg().reservations).toEqual({});
    expect(
      checkInvariants({ kind: 'failed-over', source: 'node1', target: 'node2', sourceOnline: true }, c.instance('web1'), c.status('web1')),
    ).toEqual([]);
  });

  test('a sharedfile instance to an explicit target closes the disks on the source first', async () => {
    const { c } = await h.cluster();
    const r = await failover(c, { instance: 'files1', targetNode: 'node3' });
    expect(r.ok && r.result.feedback).toContain('* closing instance disks on node node2');
    expect(
      checkInvariants(
        { kind: 'failed-over', source: 'node2', target: 'node3', sourceOnline: true },
        c.instance('files1'),
        c.status('files1'),
      ),
    ).toEqual([]);
    expect(Object.keys(c.status('files1').disks[0]!.nodes)).toEqual(['node3']);
  });

  test('a forthcoming instance only has its configuration updated', async () => {
    const { c } = await h.cluster({ configure: (cfg) => void (cfg.instances.web1!.forthcoming = true) });
    const hw0 = hardwareShape(c);
    const r = await failover(c, { instance: 'web1' });
    expect(r.ok && r.result.feedback).toEqual(['Failover instance web1', 'Instance is forthcoming, just updating the  configuration']);
    expect(c.instance('web1').primaryNode).toBe('node2');
    expect(hardwareShape(c)).toEqual(hw0);
  });

  test('a degraded target is refused; with ignoreConsistency the failover proceeds', async () => {
    const { c } = await h.cluster();
    await c.inject('web1', 'node2', 'degraded');
    const cfg0 = configShape(c);
    const e = failure(await failover(c, { instance: 'web1' }));
    expect(e).toMatchObject({ type: 'ExecutionFailed', message: 'Disk 0 is degraded on target node, aborting failover' });
    expect(configShape(c)).toEqual(cfg0);
    expect(c.status('web1').runningOn).toEqual(['node1']);

    const r = await failover(c, { instance: 'web1', ignoreConsistency: true });
    expect(r.ok).toBe(true);
    expect(c.instance('web1').primaryNode).toBe('node2');
    expect(c.status('web1').runningOn).toEqual(['node2']);
    // node2 was Inconsistent: it became Primary while resyncing from node1.
    expect(c.status('web1').disks[0]!.nodes.node2!.role).toBe('Primary');
  });

  test('a dead primary marked offline (not the master): degraded disks and a failed shutdown are warnings, the instance starts on the secondary', async () => {
    const { c } = await h.cluster();
    await c.hw.mutate((s, now) => setPower(s, now, 'node2', false));
    await c.config.modifyNode('node2', { offline: true });
    const r = await failover(c, { instance: 'web2' });
    expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
    if (!r.ok) return;
    expect(r.result.feedback).toEqual([
      'Failover instance web2',
      '* checking disk consistency between source and target',
      'Node node2 is offline, ignoring degraded disk 0 on target node node3',
      '* shutting down instance on source node',
      ' - WARNING: Could not shutdown instance web2 on node node2, proceeding anyway; please make sure node node2 is down; error details: Node is marked offline',
      "* deactivating the instance's disks on source node",
      ' - WARNING: Could not shutdown block device disk/0 on node node2: Node is marked offline',
      "* activating the instance's disks on target node node3",
      ' - WARNING: Could not prepare block device disk/0 on node node2 (is_primary=False, pass=1): Node is marked offline',
      ' - WARNING: Could not wait for the DRBD handshake on secondary node2: Node is marked offline',
      '* starting the instance on the target node node3',
    ]);
    // No call at all was sent to the offline node.
    expect(c.log({ node: 'node1', instance: 'web2' })).toEqual([]);
    expect(
      checkInvariants({ kind: 'failed-over', source: 'node2', target: 'node3', sourceOnline: false }, c.instance('web2'), c.status('web2')),
    ).toEqual([]);
  });

  test('a dead primary not marked offline is not inferred from a timeout: the failover is refused', async () => {
    const { c } = await h.cluster();
    await c.hw.mutate((s, now) => setPower(s, now, 'node1', false));
    const cfg0 = configShape(c);
    const e = failure(await failover(c, { instance: 'web1' }));
    expect(e.message).toBe('Disk 0 is degraded on target node, aborting failover');
    expect(configShape(c)).toEqual(cfg0);
  });

  test('a shutdown failure on an online source aborts before any change', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'instance_shutdown', node: 'node1', mode: 'permanent' });
    const cfg0 = configShape(c);
    const e = failure(await failover(c, { instance: 'web1' }));
    expect(e.message).toBe('Could not shutdown instance web1 on node node1: injected failure in instance_shutdown on node1');
    expect(configShape(c)).toEqual(cfg0);
    expect(c.status('web1').runningOn).toEqual(['node1']);
  });

  test('a guest ignoring the soft shutdown is killed when the timeout runs out', async () => {
    const { c } = await h.cluster();
    await c.inject('web1', 'node1', 'unresponsive');
    const r = await failover(c, { instance: 'web1', shutdownTimeout: 5 });
    expect(r.ok).toBe(true);
    expect(mutatingSteps(c, 'web1')[0]).toBe('instance_shutdown(forced after 5 s)@node1');
    expect(c.status('web1').runningOn).toEqual(['node2']);
  });

  test("a failed start on the target deactivates the disks and names 'instance start' as the repair, which repairs it", async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'instance_start', node: 'node2', mode: 'permanent' });
    const handle = await startFailover(h.env().client, { instance: 'web1' }, { cluster: c.name });
    const e = failure(await outcomeOf(operationResult(handle)));
    expect(e.message).toBe('Could not start instance web1 on node node2: injected failure in instance_start on node2');
    // Past the swap: another failover would move it back to node1, a start runs it on its new primary.
    expect(await handle.query(progressQuery)).toMatchObject({
      needsOperator: true,
      repair: "fix the cause, then run 'ganeti-temporal instance start web1' to start it on node2",
    });
    expect(c.instance('web1')).toMatchObject({ primaryNode: 'node2', disksActive: false, adminState: 'up' });
    const st = c.status('web1');
    expect(st.runningOn).toEqual([]);
    expect(Object.values(st.disks[0]!.nodes).map((d) => d.connection)).toEqual(['Unconfigured', 'Unconfigured']);

    await c.clearFaults();
    const r = await outcomeOf(startupInstance(h.env().client, { instance: 'web1' }, { cluster: c.name }));
    expect(r.ok).toBe(true);
    expect(c.instance('web1').primaryNode).toBe('node2');
    expect(checkInvariants({ kind: 'started', remembered: true }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('a failover stopped before the swap names another failover as the repair', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'blockdev_shutdown', node: 'node2', mode: 'permanent' });
    const handle = await startFailover(h.env().client, { instance: 'web1' }, { cluster: c.name });
    failure(await outcomeOf(operationResult(handle)));
    expect((await handle.query(progressQuery)).repair).toBe("fix the cause, then run 'ganeti-temporal instance failover web1' again");
  });

  test('a disk that cannot be shut down on the secondary stops the failover; a retried failover repairs it', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'blockdev_shutdown', node: 'node2', mode: 'permanent' });
    const e = failure(await failover(c, { instance: 'web1' }));
    expect(e.message).toBe("Can't shut down the instance's disks");
    expect(e.feedback).toContain(
      ' - WARNING: Could not shutdown block device disk/0 on node node2: injected failure in blockdev_shutdown on node2',
    );
    // The instance was shut down and its disks marked inactive; the primary is unchanged.
    expect(c.instance('web1')).toMatchObject({ primaryNode: 'node1', disksActive: false });
    expect(c.status('web1').runningOn).toEqual([]);
    await c.clearFaults();
    expect((await failover(c, { instance: 'web1' })).ok).toBe(true);
    expect(
      checkInvariants({ kind: 'failed-over', source: 'node1', target: 'node2', sourceOnline: true }, c.instance('web1'), c.status('web1')),
    ).toEqual([]);
  });

  test('disks that cannot be activated on the target are deactivated again; a retried failover repairs it', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'blockdev_assemble', node: 'node2', mode: 'permanent', skip: 1 }); // pass 2, as primary
    const e = failure(await failover(c, { instance: 'web1' }));
    expect(e.message).toBe("Can't activate the instance's disks");
    expect(e.feedback).toContain(
      ' - WARNING: Could not prepare block device disk/0 on node node2 (is_primary=True, pass=2): injected failure in blockdev_assemble on node2',
    );
    expect(c.instance('web1')).toMatchObject({ primaryNode: 'node2', disksActive: false, adminState: 'up' });
    expect(c.status('web1').runningOn).toEqual([]);
    await c.clearFaults();
    expect((await failover(c, { instance: 'web1' })).ok).toBe(true);
    expect(
      checkInvariants({ kind: 'failed-over', source: 'node2', target: 'node1', sourceOnline: true }, c.instance('web1'), c.status('web1')),
    ).toEqual([]);
  });

  test('dry run checks and plans, changes nothing', async () => {
    const { c } = await h.cluster();
    const cfg0 = configShape(c);
    const hw0 = hardwareShape(c);
    const r = await failover(c, { instance: 'web2', dryRun: true });
    expect(r.ok && r.result).toMatchObject({
      outcome: 'dry-run',
      plan: { operation: 'failover', sourceNode: 'node2', targetNode: 'node3', mode: null },
    });
    expect(r.ok && r.result.plan?.steps).toEqual([
      'Check disk consistency on node3',
      'Shut down the instance on node2',
      'Deactivate the disks on all nodes',
      'Set the primary node to node3',
      'Activate the disks with node3 as primary',
      'Start the instance on node3',
    ]);
    expect(configShape(c)).toEqual(cfg0);
    expect(hardwareShape(c)).toEqual(hw0);
    expect(c.cfg().reservations).toEqual({});
  });

  test('input is validated', async () => {
    const { c } = await h.cluster();
    const e = failure(await failover(c, { instance: 'web1', shutdownTimeout: -1 }));
    expect(e).toMatchObject({ type: 'PrereqFailed', code: 'wrong_input' });
    expect(e.message).toContain('shutdownTimeout');
  });
});

describe('migrate falls back to failover during the prerequisites only', () => {
  test('an admin-down instance with allowFailover is failed over', async () => {
    const { c } = await h.cluster({ configure: markDown('web1') });
    const r = await migrate(h.env(), c, { instance: 'web1', allowFailover: true });
    expect(r.ok && r.result.outcome).toBe('failed-over');
    expect(r.ok && r.result.feedback.slice(0, 3)).toEqual([
      ' - INFO: Instance is marked down or offline, fallback allowed, switching to failover',
      ' - INFO: Not checking memory on the secondary node as instance will not be started',
      'Failover instance web1',
    ]);
    expect(
      checkInvariants({ kind: 'failed-over', source: 'node1', target: 'node2', sourceOnline: true }, c.instance('web1'), c.status('web1')),
    ).toEqual([]);
  });

  test('an admin-down instance without allowFailover is refused', async () => {
    const { c } = await h.cluster({ configure: markDown('web1') });
    const cfg0 = configShape(c);
    const r = await migrate(h.env(), c, { instance: 'web1' });
    expect(!r.ok && r.error).toMatchObject({
      type: 'PrereqFailed',
      code: 'wrong_state',
      message: "Can't migrate, please use failover: Instance web1 is not running",
    });
    expect(configShape(c)).toEqual(cfg0);
  });

  test('an instance that is not running is failed over (and started) with allowFailover', async () => {
    const { c } = await h.cluster();
    await c.inject('web1', 'node1', 'stopped');
    const r = await migrate(h.env(), c, { instance: 'web1', allowFailover: true });
    expect(r.ok && r.result.outcome).toBe('failed-over');
    expect(r.ok && r.result.feedback).toContain(" - INFO: Can't migrate, instance offline, fallback to failover");
    expect(
      checkInvariants({ kind: 'failed-over', source: 'node1', target: 'node2', sourceOnline: true }, c.instance('web1'), c.status('web1')),
    ).toEqual([]);
  });

  test('always_failover forces a failover even without allowFailover', async () => {
    const { c } = await h.cluster({ configure: (cfg) => void (cfg.instances.web2!.beparams.always_failover = true) });
    const r = await migrate(h.env(), c, { instance: 'web2' });
    expect(r.ok && r.result.outcome).toBe('failed-over');
    expect(r.ok && r.result.feedback.slice(0, 2)).toEqual([
      ' - INFO: Instance configured to always failover; fallback to failover',
      'Failover instance web2',
    ]);
    expect(mutatingSteps(c, 'web2').some((s) => s.startsWith('instance_migrate'))).toBe(false);
    expect(
      checkInvariants({ kind: 'failed-over', source: 'node2', target: 'node3', sourceOnline: true }, c.instance('web2'), c.status('web2')),
    ).toEqual([]);
  });

  test('never falls back during execution: a failed migration stays a failed migration', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'accept_instance', mode: 'permanent' });
    const e = failure(await migrate(h.env(), c, { instance: 'web1', allowFailover: true }));
    expect(e.message).toBe('Could not pre-migrate instance web1: injected failure in accept_instance on node2');
    expect(mutatingSteps(c, 'web1').some((s) => s.startsWith('instance_shutdown'))).toBe(false);
    expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });
});

describe('migrate and failover exclude each other', () => {
  test('a failover is refused while a migration runs, and the other way round', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 10 } });
    const m = await start(h.env(), c, { instance: 'web1' });
    const f = await outcomeOf(failoverInstance(h.env().client, { instance: 'web1' }, { cluster: c.name }));
    expect(!f.ok && f.error).toBeInstanceOf(InstanceBusyError);
    expect(!f.ok && f.error.message).toContain('instance web1 is busy: migrate is running');
    expect((await outcomeOf(operationResult(m))).ok).toBe(true);

    const fo = await startFailover(h.env().client, { instance: 'web1' }, { cluster: c.name });
    const m2 = await migrate(h.env(), c, { instance: 'web1' });
    expect(!m2.ok && m2.error).toBeInstanceOf(InstanceBusyError);
    expect(!m2.ok && m2.error.message).toContain('instance web1 is busy: failover is running');
    expect((await outcomeOf(operationResult(fo))).ok).toBe(true);
    expect(
      checkInvariants({ kind: 'failed-over', source: 'node2', target: 'node1', sourceOnline: true }, c.instance('web1'), c.status('web1')),
    ).toEqual([]);
  });
});
