/**
 * Read helpers over the cluster model (domain/instance.ts, the DRBD side helpers of domain/types.ts)
 * and the one-line operation summaries built on them (domain/summary.ts).
 */
import { describe, expect, test } from 'vitest';
import {
  filledHvParams,
  instanceNodes,
  isDrbd,
  mirrorKind,
  requiredBridges,
  rpcInstanceFor,
  secondaryNodes,
} from '../../../domain/instance.js';
import { FailoverInputSchema, MigrateInputSchema, type FailoverInput, type MigrateInput } from '../../../domain/ops.js';
import { failoverSummary, migrateSummary } from '../../../domain/summary.js';
import { otherSide, sideOf, type ClusterConfig, type Instance } from '../../../domain/types.js';
import { defaultClusterConfig } from '../../../adapters/sim/cluster.js';

function cluster(): ClusterConfig {
  return structuredClone(defaultClusterConfig());
}

function inst(cfg: ClusterConfig, name: string): Instance {
  const i = cfg.instances[name];
  if (!i) throw new Error(`no instance ${name}`);
  return i;
}

/** web1 with a second DRBD disk (node1/node2) whose logical id lists the secondary first. */
function twoDisks(cfg: ClusterConfig): Instance {
  const web1 = inst(cfg, 'web1');
  web1.disks.push({
    uuid: 'disk-1-1',
    size: 2048,
    mode: 'ro',
    drbd: { nodes: ['node2', 'node1'], minors: [7, 8], port: 11020, secret: 's' },
  });
  return web1;
}

describe('mirroring and nodes', () => {
  test('DRBD is internally mirrored, sharedfile externally, plain and file not at all', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    expect(mirrorKind(web1)).toBe('internal');
    expect(isDrbd(web1)).toBe(true);
    const files1 = inst(cfg, 'files1');
    expect(mirrorKind(files1)).toBe('external');
    expect(isDrbd(files1)).toBe(false);
    expect(mirrorKind({ ...files1, diskTemplate: 'plain' })).toBe('none');
    expect(mirrorKind({ ...files1, diskTemplate: 'file' })).toBe('none');
  });

  test('secondaries come from the disks’ node pairs, without the primary and without repeats', () => {
    const cfg = cluster();
    const web1 = twoDisks(cfg);
    expect(secondaryNodes(web1)).toEqual(['node2']);
    expect(instanceNodes(web1)).toEqual(['node1', 'node2']);
    // After a migration the primary is node2: the secondary is node1 for both disks.
    expect(secondaryNodes({ ...web1, primaryNode: 'node2' })).toEqual(['node1']);
    expect(instanceNodes({ ...web1, primaryNode: 'node2' })).toEqual(['node2', 'node1']);
    // A disk on another pair adds its node after the first.
    web1.disks.push({ uuid: 'd3', size: 1, mode: 'rw', drbd: { nodes: ['node1', 'node3'], minors: [9, 9], port: 11021, secret: 's' } });
    expect(secondaryNodes(web1)).toEqual(['node2', 'node3']);
    // Non-DRBD instances have none.
    expect(secondaryNodes(inst(cfg, 'files1'))).toEqual([]);
    expect(instanceNodes(inst(cfg, 'files1'))).toEqual(['node2']);
  });

  test('the DRBD side of a node, and the other side', () => {
    const id = { nodes: ['node1', 'node2'] as [string, string], minors: [0, 1] as [number, number], port: 11000, secret: 's' };
    expect(sideOf(id, 'node1')).toBe(0);
    expect(sideOf(id, 'node2')).toBe(1);
    expect(sideOf(id, 'node3')).toBeNull();
    expect(otherSide(0)).toBe(1);
    expect(otherSide(1)).toBe(0);
  });
});

describe('parameters', () => {
  test('hypervisor parameters the instance leaves unset come from the cluster defaults', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    expect(filledHvParams(cfg, web1)).toEqual({ migration_mode: 'live', migration_bandwidth: 32, migration_downtime: 30 });
    web1.hvparams = { migration_mode: 'non-live', migration_bandwidth: 100, migration_downtime: 5 };
    expect(filledHvParams(cfg, web1)).toEqual({ migration_mode: 'non-live', migration_bandwidth: 100, migration_downtime: 5 });
    web1.hvparams = { migration_downtime: 7 };
    cfg.cluster.hvparams = { migration_mode: 'non-live', migration_bandwidth: 64, migration_downtime: 30 };
    expect(filledHvParams(cfg, web1)).toEqual({ migration_mode: 'non-live', migration_bandwidth: 64, migration_downtime: 7 });
  });

  test('only bridged NICs need their bridge on the target, each bridge once', () => {
    const web1 = inst(cluster(), 'web1');
    const nic = web1.nics[0]!;
    web1.nics = [
      { ...nic, link: 'br0' },
      { ...nic, uuid: 'n2', link: 'br1' },
      { ...nic, uuid: 'n3', link: 'br0' },
      { ...nic, uuid: 'n4', link: 'table100', mode: 'routed' },
      { ...nic, uuid: 'n5', link: 'ovs0', mode: 'openvswitch' },
    ];
    expect(requiredBridges(web1)).toEqual(['br0', 'br1']);
    expect(requiredBridges({ ...web1, nics: [] })).toEqual([]);
  });
});

describe('the instance description sent with a node RPC', () => {
  test('gives each node its own DRBD minor, the peer, the peer’s minor and replication IP', () => {
    const cfg = cluster();
    const web1 = twoDisks(cfg);
    const common = {
      name: 'web1',
      uuid: 'inst-1',
      memory: 1024,
      vcpus: 2,
      bridges: ['br0'],
      hvparams: { migration_mode: 'live', migration_bandwidth: 32, migration_downtime: 30 },
    };
    expect(rpcInstanceFor(cfg, web1, 'node1')).toStrictEqual({
      ...common,
      disks: [
        {
          index: 0,
          uuid: 'disk-1-0',
          size: 10240,
          template: 'drbd',
          drbd: { minor: 0, peerNode: 'node2', peerMinor: 0, peerIp: '198.51.100.12', port: 11000 },
        },
        {
          index: 1,
          uuid: 'disk-1-1',
          size: 2048,
          template: 'drbd',
          drbd: { minor: 8, peerNode: 'node2', peerMinor: 7, peerIp: '198.51.100.12', port: 11020 },
        },
      ],
    });
    expect(rpcInstanceFor(cfg, web1, 'node2').disks.map((d) => d.drbd)).toEqual([
      { minor: 0, peerNode: 'node1', peerMinor: 0, peerIp: '198.51.100.11', port: 11000 },
      { minor: 7, peerNode: 'node1', peerMinor: 8, peerIp: '198.51.100.11', port: 11020 },
    ]);
  });

  test('a node outside the DRBD pair gets no DRBD details (and a DRBD disk no path); an unknown peer gets 0.0.0.0', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    expect(rpcInstanceFor(cfg, web1, 'node3').disks).toStrictEqual([{ index: 0, uuid: 'disk-1-0', size: 10240, template: 'drbd' }]);
    delete cfg.nodes.node2;
    expect(rpcInstanceFor(cfg, web1, 'node1').disks[0]?.drbd?.peerIp).toBe('0.0.0.0');
  });

  test('a sharedfile disk carries its image path and no DRBD details', () => {
    const cfg = cluster();
    expect(rpcInstanceFor(cfg, inst(cfg, 'files1'), 'node3')).toStrictEqual({
      name: 'files1',
      uuid: 'inst-5',
      memory: 1024,
      vcpus: 1,
      bridges: ['br0'],
      hvparams: { migration_mode: 'live', migration_bandwidth: 32, migration_downtime: 30 },
      disks: [{ index: 0, uuid: 'disk-5-0', size: 4096, template: 'sharedfile', path: 'files1/disk0.img' }],
    });
  });
});

describe('operation summaries', () => {
  const m = (input: MigrateInput) => MigrateInputSchema.parse(input);
  const f = (input: FailoverInput) => FailoverInputSchema.parse(input);

  test('a migration names the move and the mode, from the configuration when there is one', () => {
    const cfg = cluster();
    expect(migrateSummary(m({ instance: 'web1' }), cfg)).toBe('Migrate web1: node1 → node2, live');
    inst(cfg, 'web1').hvparams = { migration_mode: 'non-live' };
    expect(migrateSummary(m({ instance: 'web1' }), cfg)).toBe('Migrate web1: node1 → node2, non-live');
    expect(migrateSummary(m({ instance: 'web1', live: true }), cfg)).toBe('Migrate web1: node1 → node2, live');
    expect(migrateSummary(m({ instance: 'web1', mode: 'live' }), cfg)).toBe('Migrate web1: node1 → node2, live');
    expect(migrateSummary(m({ instance: 'web1', live: false }), cfg)).toBe('Migrate web1: node1 → node2, non-live');
  });

  test('a sharedfile migration without a target is placed by the allocator', () => {
    const cfg = cluster();
    expect(migrateSummary(m({ instance: 'files1' }), cfg)).toBe('Migrate files1: node2 → allocator, live');
    expect(migrateSummary(m({ instance: 'files1', targetNode: 'node3' }), cfg)).toBe('Migrate files1: node2 → node3, live');
  });

  test('without a configuration only what was asked is named', () => {
    expect(migrateSummary(m({ instance: 'web1' }))).toBe('Migrate web1, default mode');
    expect(migrateSummary(m({ instance: 'web1', targetNode: 'node2', mode: 'non-live' }))).toBe('Migrate web1 → node2, non-live');
    // An instance the configuration does not know is described the same way.
    expect(migrateSummary(m({ instance: 'nosuch', targetNode: 'node2' }), cluster())).toBe('Migrate nosuch → node2, default mode');
  });

  test('the flags that change what happens are named', () => {
    const cfg = cluster();
    expect(migrateSummary(m({ instance: 'web1', allowFailover: true, dryRun: true }), cfg)).toBe(
      'Migrate web1: node1 → node2, live (failover allowed) (dry run)',
    );
    expect(migrateSummary(m({ instance: 'web1', cleanup: true }), cfg)).toBe('Cleanup after a failed migration of web1');
    expect(migrateSummary(m({ instance: 'web1', cleanup: true, dryRun: true }))).toBe('Cleanup after a failed migration of web1 (dry run)');
  });

  test('a failover names the move and whether consistency is ignored', () => {
    const cfg = cluster();
    expect(failoverSummary(f({ instance: 'web2' }), cfg)).toBe('Failover web2: node2 → node3');
    expect(failoverSummary(f({ instance: 'web2', ignoreConsistency: true, dryRun: true }), cfg)).toBe(
      'Failover web2: node2 → node3, ignoring consistency (dry run)',
    );
    expect(failoverSummary(f({ instance: 'files1', targetNode: 'node1' }), cfg)).toBe('Failover files1: node2 → node1');
    expect(failoverSummary(f({ instance: 'web2' }))).toBe('Failover web2');
  });
});
