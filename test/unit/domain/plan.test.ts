/**
 * The steps an operation runs, as the dry run reports them and the workflow marks them
 * (domain/plan.ts): which steps a DRBD or sharedfile migration, a cleanup and a failover of a
 * running, down or forthcoming instance take, in order, with labels naming the nodes involved.
 */
import { describe, expect, test } from 'vitest';
import { describePlan, planSteps } from '../../../domain/plan.js';
import type { MigrationPlan } from '../../../domain/prereq.js';
import type { Instance } from '../../../domain/types.js';
import { defaultClusterConfig } from '../../../adapters/sim/cluster.js';

/** web1: DRBD, primary node1, secondary node2. files1: sharedfile on node2. */
function instance(name: 'web1' | 'files1', change: Partial<Instance> = {}): Instance {
  const inst = defaultClusterConfig().instances[name];
  if (!inst) throw new Error(`no instance ${name}`);
  return { ...inst, ...change };
}

function plan(change: Partial<MigrationPlan> = {}): MigrationPlan {
  return {
    instance: 'web1',
    operation: 'migrate',
    fellBackToFailover: false,
    mirror: 'internal',
    sourceNode: 'node1',
    targetNode: 'node2',
    mode: 'live',
    live: true,
    targetFreeMemory: 8000,
    reservedMemory: 1024,
    currentMemory: 1024,
    feedback: [],
    ...change,
  };
}

const keys = (p: MigrationPlan, i: Instance): string[] => planSteps(p, i).map((s) => s.key);

describe('a migration', () => {
  test('of a DRBD instance goes dual-master before the transfer and back to single-master after it', () => {
    expect(planSteps(plan(), instance('web1'))).toEqual([
      { key: 'hv-version', label: 'Compare hypervisor versions of node1 and node2' },
      { key: 'disk-consistency', label: 'Check disk consistency on node2' },
      { key: 'migration-info', label: 'Fetch migration information from node1' },
      { key: 'close-target', label: 'Close the disks on node2' },
      { key: 'standalone', label: 'Disconnect DRBD (standalone)' },
      { key: 'dual-master', label: 'Reconnect DRBD dual-master' },
      { key: 'sync', label: 'Wait for resync' },
      { key: 'open-shared', label: 'Open the disks on node1 and node2 in shared mode' },
      { key: 'accept', label: 'Prepare node2 to accept the instance' },
      { key: 'migrate', label: 'Migrate the instance (live) to node2' },
      { key: 'memory-transfer', label: 'Transfer the memory' },
      { key: 'finalize', label: 'Finalize on node1 and node2' },
      { key: 'commit', label: 'Set the primary node to node2' },
      { key: 'close-source', label: 'Close the disks on node1' },
      { key: 'final-sync', label: 'Wait for resync' },
      { key: 'final-standalone', label: 'Disconnect DRBD (standalone)' },
      { key: 'single-master', label: 'Reconnect DRBD single-master' },
      { key: 'settle-sync', label: 'Wait for resync' },
    ]);
  });

  test('of a sharedfile instance has no DRBD steps and ends opening the disks exclusively on the target', () => {
    const p = plan({ instance: 'files1', mirror: 'external', sourceNode: 'node2', targetNode: 'node3', mode: 'non-live', live: false });
    expect(planSteps(p, instance('files1'))).toEqual([
      { key: 'hv-version', label: 'Compare hypervisor versions of node2 and node3' },
      { key: 'disk-consistency', label: 'Check disk consistency on node3' },
      { key: 'migration-info', label: 'Fetch migration information from node2' },
      { key: 'close-target', label: 'Close the disks on node3' },
      { key: 'open-shared', label: 'Open the disks on node2 and node3 in shared mode' },
      { key: 'accept', label: 'Prepare node3 to accept the instance' },
      { key: 'migrate', label: 'Migrate the instance (non-live) to node3' },
      { key: 'memory-transfer', label: 'Transfer the memory' },
      { key: 'finalize', label: 'Finalize on node2 and node3' },
      { key: 'commit', label: 'Set the primary node to node3' },
      { key: 'close-source', label: 'Close the disks on node2' },
      { key: 'open-exclusive', label: 'Open the disks on node3 in exclusive mode' },
    ]);
  });

  test('balloons the instance down to the target’s free memory, after the consistency check, only when it uses more', () => {
    const web1 = instance('web1');
    const ballooned = planSteps(plan({ currentMemory: 2048, targetFreeMemory: 1500 }), web1);
    expect(ballooned.slice(0, 4)).toEqual([
      { key: 'hv-version', label: 'Compare hypervisor versions of node1 and node2' },
      { key: 'disk-consistency', label: 'Check disk consistency on node2' },
      { key: 'balloon', label: 'Balloon the instance to 1500 MiB' },
      { key: 'migration-info', label: 'Fetch migration information from node1' },
    ]);
    expect(ballooned.filter((s) => s.key === 'balloon')).toHaveLength(1);
    // Exactly enough, plenty, or a figure that was not measured: no ballooning.
    expect(keys(plan({ currentMemory: 1500, targetFreeMemory: 1500 }), web1)).not.toContain('balloon');
    expect(keys(plan({ currentMemory: 1024, targetFreeMemory: 8000 }), web1)).not.toContain('balloon');
    expect(keys(plan({ currentMemory: null, targetFreeMemory: 0 }), web1)).not.toContain('balloon');
    expect(keys(plan({ currentMemory: null, targetFreeMemory: -1 }), web1)).not.toContain('balloon');
    expect(keys(plan({ currentMemory: 2048, targetFreeMemory: null }), web1)).not.toContain('balloon');
  });
});

describe('a cleanup', () => {
  const cleanup = plan({ operation: 'cleanup', mode: null, live: false, targetFreeMemory: null, currentMemory: null });

  test('of a DRBD instance locates it, commits where it runs and resyncs back to single-master', () => {
    expect(planSteps(cleanup, instance('web1'))).toEqual([
      { key: 'locate', label: 'Locate the instance on all online nodes' },
      { key: 'abort-migration', label: 'Abort the half-done migration if it runs on both nodes' },
      { key: 'commit', label: 'Point the configuration at the node that runs it' },
      { key: 'close-demoted', label: 'Close the disks on the other node' },
      { key: 'sync', label: 'Wait for resync' },
      { key: 'standalone', label: 'Disconnect DRBD (standalone)' },
      { key: 'single-master', label: 'Reconnect DRBD single-master' },
      { key: 'final-sync', label: 'Wait for resync' },
    ]);
  });

  test('of a sharedfile instance ends opening the disks exclusively on the primary', () => {
    const p = { ...cleanup, instance: 'files1', mirror: 'external' as const, sourceNode: 'node2', targetNode: 'node3' };
    expect(keys(p, instance('files1'))).toEqual(['locate', 'abort-migration', 'commit', 'close-demoted', 'open-exclusive']);
    expect(planSteps(p, instance('files1')).at(-1)).toEqual({ key: 'open-exclusive', label: 'Open the disks exclusively on the primary' });
  });
});

describe('a failover', () => {
  const failover = plan({ operation: 'failover', mode: null, live: false, currentMemory: null });

  test('of a running DRBD instance shuts it down on the source and starts it on the target', () => {
    expect(planSteps(failover, instance('web1'))).toEqual([
      { key: 'disk-consistency', label: 'Check disk consistency on node2' },
      { key: 'shutdown', label: 'Shut down the instance on node1' },
      { key: 'deactivate-disks', label: 'Deactivate the disks on all nodes' },
      { key: 'commit', label: 'Set the primary node to node2' },
      { key: 'activate-disks', label: 'Activate the disks with node2 as primary' },
      { key: 'start', label: 'Start the instance on node2' },
    ]);
  });

  test('of a running sharedfile instance also closes the disks on the source', () => {
    const p = { ...failover, instance: 'files1', mirror: 'external' as const, sourceNode: 'node2', targetNode: 'node3' };
    expect(planSteps(p, instance('files1'))).toEqual([
      { key: 'disk-consistency', label: 'Check disk consistency on node3' },
      { key: 'shutdown', label: 'Shut down the instance on node2' },
      { key: 'close-source', label: 'Close the disks on node2' },
      { key: 'deactivate-disks', label: 'Deactivate the disks on all nodes' },
      { key: 'commit', label: 'Set the primary node to node3' },
      { key: 'activate-disks', label: 'Activate the disks with node3 as primary' },
      { key: 'start', label: 'Start the instance on node3' },
    ]);
  });

  test('of an instance that is down (or offline) leaves it stopped with its disks deactivated', () => {
    for (const adminState of ['down', 'offline'] as const) {
      expect(keys(failover, instance('web1', { adminState }))).toEqual(['disk-consistency', 'shutdown', 'deactivate-disks', 'commit']);
    }
  });

  test('of a forthcoming instance only changes the configuration', () => {
    expect(planSteps(failover, instance('web1', { forthcoming: true }))).toEqual([
      { key: 'commit', label: 'Set the primary node to node2 (configuration only)' },
    ]);
  });
});

describe('describePlan (the dry run’s answer)', () => {
  test('names the operation, the nodes and the mode, and lists the step labels in order', () => {
    const web1 = instance('web1');
    const p = plan({ mode: 'non-live', live: false });
    expect(describePlan(p, web1)).toEqual({
      operation: 'migrate',
      sourceNode: 'node1',
      targetNode: 'node2',
      mode: 'non-live',
      steps: planSteps(p, web1).map((s) => s.label),
    });
    expect(describePlan(p, web1).steps).toContain('Migrate the instance (non-live) to node2');
  });

  test('of a failover has no mode and the failover’s steps', () => {
    const p = plan({ operation: 'failover', mode: null, live: false });
    expect(describePlan(p, instance('web1', { adminState: 'down' }))).toEqual({
      operation: 'failover',
      sourceNode: 'node1',
      targetNode: 'node2',
      mode: null,
      steps: [
        'Check disk consistency on node2',
        'Shut down the instance on node1',
        'Deactivate the disks on all nodes',
        'Set the primary node to node2',
      ],
    });
  });
});
