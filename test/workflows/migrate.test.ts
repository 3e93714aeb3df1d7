/**
 * The migrate workflow on a real dev server over the simulated cluster: successful paths (live and
 * non-live DRBD, sharedfile with an explicit target and with the allocator), ballooning, dry run,
 * exclusion of concurrent operations and the memory reservation.
 */
import { describe, expect, test } from 'vitest';
import { InstanceBusyError, operationResult } from '../../client/api.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { configShape, hardwareShape, migrate, outcomeOf, start, useHarness, waitForProgress } from '../helpers/harness.js';
import { mutatingSteps, withoutProgress } from '../helpers/steps.js';

const h = useHarness();

/** The policy line every migration shows (issue 14): here the defaults, for a 1 GiB instance. */
const DEFAULT_POLICY_LINE =
  '* migration policy: bandwidth 32 MiB/s, max downtime 30 ms, auto-converge off, post-copy not allowed, ' +
  'completion timeout 800 s/GiB (800 s), progress timeout 150 s, on timeout abort';

const DRBD_LIVE_FEEDBACK = [
  DEFAULT_POLICY_LINE,
  'Migrating instance web1',
  '* checking disk consistency between source and target',
  '* closing instance disks on node node2',
  '* changing into standalone mode',
  '* changing disks into dual-master mode',
  '* wait until resync is done',
  '* opening instance disks on node node1 in shared mode',
  '* opening instance disks on node node2 in shared mode',
  '* preparing node2 to accept the instance',
  '* migrating instance to node2',
  '* starting memory transfer',
  '* memory transfer complete',
  '* closing instance disks on node node1',
  '* wait until resync is done',
  '* changing into standalone mode',
  '* changing disks into single-master mode',
  '* wait until resync is done',
  '* done',
];

describe('DRBD migration', () => {
  test('live-migrates to the secondary in Ganeti order, and primary is the only configuration change', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 20 } });
    const before = c.cfg();
    const r = await migrate(h.env(), c, { instance: 'web1' });
    expect(r.ok && r.result).toMatchObject({ outcome: 'migrated', instance: 'web1', sourceNode: 'node1', targetNode: 'node2' });
    if (!r.ok) return;
    expect(withoutProgress(r.result.feedback)).toEqual(DRBD_LIVE_FEEDBACK);
    // At 20x, 1 GiB at 32 MiB/s takes ~1.7 s: progress lines every 150 ms, Ganeti's format.
    const progress = r.result.feedback.filter((l) => l.startsWith('* memory transfer progress:'));
    expect(progress.length).toBeGreaterThan(2);
    for (const l of progress) expect(l).toMatch(/^\* memory transfer progress: \d+\.\d\d %$/);
    expect(mutatingSteps(c, 'web1')).toEqual([
      'blockdev_close@node2',
      'drbd_disconnect_net@node1+node2',
      'drbd_attach_net(dual-master)@node1+node2',
      'blockdev_open(shared)@node1+node2',
      'accept_instance(198.51.100.12)@node2',
      'instance_migrate(node2:8102 live)@node1',
      'instance_finalize_migration_src(success)@node1',
      'instance_finalize_migration_dst(success)@node2',
      'blockdev_close@node1',
      'drbd_disconnect_net@node1+node2',
      'drbd_attach_net(single-master)@node1+node2',
    ]);
    const after = c.cfg();
    expect(after.instances.web1!.primaryNode).toBe('node2');
    expect({ ...after.instances.web1, primaryNode: 'node1' }).toEqual(before.instances.web1);
    expect({ ...after, instances: before.instances, serial: before.serial }).toEqual(before);
    expect(after.serial).toBeGreaterThan(before.serial);
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('non-live migration pauses the source first and resumes the destination at finalize', async () => {
    const { c } = await h.cluster();
    const r = await migrate(h.env(), c, { instance: 'web1', mode: 'non-live' });
    expect(r.ok).toBe(true);
    expect(mutatingSteps(c, 'web1')).toContain('instance_migrate(node2:8102 non-live)@node1');
    expect(c.status('web1').processes).toEqual({ node2: { state: 'running' } });
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('the legacy live=false flag means non-live', async () => {
    const { c } = await h.cluster();
    const r = await migrate(h.env(), c, { instance: 'web2', live: false });
    expect(r.ok).toBe(true);
    expect(mutatingSteps(c, 'web2')).toContain('instance_migrate(node3:8102 non-live)@node2');
  });

  test('warns about a hypervisor version mismatch, which KVM considers safe', async () => {
    const { c } = await h.cluster();
    const r = await migrate(h.env(), c, { instance: 'web3' });
    expect(r.ok && r.result.feedback.slice(2, 4)).toEqual([
      '* warning: hypervisor version mismatch between source (7.2.19) and target (7.2.22) node',
      '  migrating from hypervisor version 7.2.19 to 7.2.22 should be safe',
    ]);
    expect(checkInvariants({ kind: 'migrated', source: 'node3', target: 'node1' }, c.instance('web3'), c.status('web3'))).toEqual([]);
  });

  test('migrates back and forth', async () => {
    const { c } = await h.cluster();
    expect((await migrate(h.env(), c, { instance: 'db1' })).ok).toBe(true);
    expect((await migrate(h.env(), c, { instance: 'db1' })).ok).toBe(true);
    expect(checkInvariants({ kind: 'migrated', source: 'node3', target: 'node1' }, c.instance('db1'), c.status('db1'))).toEqual([]);
  });

  test('balloons the instance down to the free memory of the target', async () => {
    const { c } = await h.cluster({
      configure: (cfg) => {
        cfg.nodes.node2!.memoryTotal = 1024 + 2048 + 800; // dom0 + web2 + files1 + 800 MiB free
      },
    });
    const r = await migrate(h.env(), c, { instance: 'web1' });
    expect(r.ok && r.result.feedback).toContain('* setting instance memory to 800');
    expect(c.state().nodes.node2!.processes.web1!.memory).toBe(800);
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('refuses to balloon without allowRuntimeChanges and changes nothing', async () => {
    const { c } = await h.cluster({
      configure: (cfg) => {
        cfg.nodes.node2!.memoryTotal = 1024 + 2048 + 800;
      },
    });
    const cfg0 = configShape(c);
    const hw0 = hardwareShape(c);
    const r = await migrate(h.env(), c, { instance: 'web1', allowRuntimeChanges: false });
    expect(!r.ok && r.error).toMatchObject({
      type: 'ExecutionFailed',
      message:
        'Memory ballooning not allowed and not enough free memory to fit instance web1 on target node node2 (have 800MB, need 1024MB)',
    });
    expect(configShape(c)).toEqual(cfg0);
    expect(hardwareShape(c)).toEqual(hw0);
    expect(c.cfg().reservations).toEqual({});
  });
});

describe('sharedfile migration', () => {
  test('migrates to an explicit target node', async () => {
    const { c } = await h.cluster();
    const r = await migrate(h.env(), c, { instance: 'files1', targetNode: 'node3' });
    expect(r.ok && withoutProgress(r.result.feedback)).toEqual([
      DEFAULT_POLICY_LINE,
      'Migrating instance files1',
      '* warning: hypervisor version mismatch between source (7.2.22) and target (7.2.19) node',
      '  migrating from hypervisor version 7.2.22 to 7.2.19 should be safe',
      '* checking disk consistency between source and target',
      '* closing instance disks on node node3',
      '* opening instance disks on node node2 in shared mode',
      '* opening instance disks on node node3 in shared mode',
      '* preparing node3 to accept the instance',
      '* migrating instance to node3',
      '* starting memory transfer',
      '* memory transfer complete',
      '* closing instance disks on node node2',
      '* opening instance disks on node node3 in exclusive mode',
      '* done',
    ]);
    expect(checkInvariants({ kind: 'migrated', source: 'node2', target: 'node3' }, c.instance('files1'), c.status('files1'))).toEqual([]);
  });

  test('without a target, the built-in allocator picks the node with the most free memory', async () => {
    const { c } = await h.cluster();
    // node1 runs web1 + db1 (3 GiB), node3 runs web3 (1 GiB): node3 has the most free memory.
    const r = await migrate(h.env(), c, { instance: 'files1' });
    expect(r.ok && r.result.feedback[0]).toBe(' - INFO: Selected nodes for instance files1 via iallocator most-free-memory: node3');
    expect(r.ok && r.result.targetNode).toBe('node3');
    expect(checkInvariants({ kind: 'migrated', source: 'node2', target: 'node3' }, c.instance('files1'), c.status('files1'))).toEqual([]);
  });
});

describe('dry run', () => {
  test('runs the prerequisites, returns the plan, and changes nothing', async () => {
    const { c } = await h.cluster();
    const cfg0 = configShape(c);
    const hw0 = hardwareShape(c);
    const r = await migrate(h.env(), c, { instance: 'web1', dryRun: true });
    expect(r.ok && r.result).toMatchObject({
      outcome: 'dry-run',
      sourceNode: 'node1',
      targetNode: 'node2',
      plan: { operation: 'migrate', sourceNode: 'node1', targetNode: 'node2', mode: 'live' },
    });
    expect(r.ok && r.result.plan?.steps).toContain('Prepare node2 to accept the instance');
    expect(configShape(c)).toEqual(cfg0);
    expect(hardwareShape(c)).toEqual(hw0);
    expect(c.cfg().reservations).toEqual({});
    expect(mutatingSteps(c, 'web1')).toEqual([]);
  });
});

describe('one operation per instance', () => {
  test('a second operation on a busy instance is refused, naming the running one', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 10 } });
    const first = await start(h.env(), c, { instance: 'web1' });
    const second = await outcomeOf(start(h.env(), c, { instance: 'web1', cleanup: true }).then((x) => operationResult(x)));
    expect(second.ok).toBe(false);
    if (second.ok) return;
    expect(second.error).toBeInstanceOf(InstanceBusyError);
    expect(second.error.message).toBe(
      `instance web1 is busy: migrate is running (workflow instance/web1, run ${first.firstExecutionRunId}); wait for it or abort it`,
    );
    expect((await outcomeOf(operationResult(first))).ok).toBe(true);
    // Once it has finished, the instance takes operations again.
    expect((await migrate(h.env(), c, { instance: 'web1' })).ok).toBe(true);
    expect(checkInvariants({ kind: 'migrated', source: 'node2', target: 'node1' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('two concurrent migrations to one node never overcommit its memory', async () => {
    const { c, w } = await h.cluster({
      configure: (cfg) => {
        cfg.nodes.node3!.memoryTotal = 1024 + 1024 + 1200; // dom0 + web3 + room for one more instance
      },
    });
    void w;
    const [a, b] = await Promise.all([migrate(h.env(), c, { instance: 'web2' }), migrate(h.env(), c, { instance: 'db1' })]);
    const ok = [a, b].filter((x) => x.ok);
    const refused = [a, b].filter((x) => !x.ok);
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(!refused[0]!.ok && refused[0]!.error).toMatchObject({ type: 'PrereqFailed', code: 'insufficient_resources' });
    const n3 = c.state().nodes.node3!;
    const used = Object.values(n3.processes).reduce((s, p) => s + p.memory, 0);
    expect(used).toBeLessThanOrEqual(n3.memoryTotal - c.state().params.dom0Memory);
    expect(c.cfg().reservations).toEqual({});
  });
});

describe('progress', () => {
  test('the feedback is readable by query while the operation runs', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 10 } });
    const handle = await start(h.env(), c, { instance: 'web1' });
    const p = await waitForProgress(handle, (v) => v.phase === 'memory-transfer');
    expect(p).toMatchObject({ operation: 'migrate', instance: 'web1', sourceNode: 'node1', targetNode: 'node2' });
    expect(p.feedback.slice(-1)).toEqual(['* starting memory transfer']);
    await operationResult(handle);
  });
});
