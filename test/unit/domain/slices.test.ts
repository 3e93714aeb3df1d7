/**
 * The pure part of snapshot slices (domain/slices.ts): what the store is asked for, which nodes a
 * slice keeps, and what a migration or failover asks for. The store's filtering and the activity are
 * tested in test/unit/slices.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { defaultClusterConfig } from '../../../adapters/sim/cluster.js';
import { operationSlice, sliceNodes, sliceScope } from '../../../domain/slices.js';
import type { ClusterSnapshot } from '../../../domain/types.js';

/** The demo cluster (web1 node1/node2, web2 node2/node3, web3 node3/node1, db1 node1/node3, files1 sharedfile on node2) plus node4. */
function full(): ClusterSnapshot {
  const { reservations: _r, leases: _l, ...cfg } = defaultClusterConfig('slices');
  cfg.nodes.node4 = { ...cfg.nodes.node3!, name: 'node4', uuid: 'node-4' };
  return cfg;
}
const only = (names: string[]): ClusterSnapshot => {
  const f = full();
  return { ...f, instances: Object.fromEntries(names.map((n) => [n, f.instances[n]!])) };
};
const nodes = (s: ClusterSnapshot) => Object.keys(s.nodes).sort();

describe('sliceScope', () => {
  test('passes the instance names and the primary node on, nothing else', () => {
    expect(sliceScope({})).toEqual({});
    expect(Object.keys(sliceScope({ nodes: 'all', allocator: true }))).toEqual([]);
    expect(sliceScope({ instances: ['web1'] })).toEqual({ instances: ['web1'] });
    expect(sliceScope({ instances: [] })).toEqual({ instances: [] });
    expect(sliceScope({ primaryOn: 'node1' })).toEqual({ primaryOn: 'node1' });
    expect(sliceScope({ primaryOn: '' })).toEqual({ primaryOn: '' });
    expect(sliceScope({ instances: ['web1'], nodes: ['node4'], primaryOn: 'node1' })).toEqual({ instances: ['web1'], primaryOn: 'node1' });
  });
});

describe('sliceNodes', () => {
  test('keeps the master, the loaded instances’ nodes and the named ones', () => {
    expect(nodes(sliceNodes(only(['web2']), {}))).toEqual(['node1', 'node2', 'node3']);
    expect(nodes(sliceNodes(only(['web1']), {}))).toEqual(['node1', 'node2']);
    expect(nodes(sliceNodes(only([]), {}))).toEqual(['node1']);
    expect(nodes(sliceNodes(only(['web1']), { nodes: ['node4', 'nodeX'] }))).toEqual(['node1', 'node2', 'node4']);
    expect(nodes(sliceNodes(only(['web2', 'web1']), {}))).toEqual(['node1', 'node2', 'node3']);
  });

  test('leaves the instances and the cluster parameters as they are', () => {
    const s = only(['web1']);
    const r = sliceNodes(s, { nodes: ['node4'] });
    expect(r.instances).toEqual(s.instances);
    expect(r.cluster).toEqual(s.cluster);
    expect(r.serial).toBe(s.serial);
    expect(nodes(s)).toHaveLength(4); // the input is not changed
  });

  test('every node for "all", or for an externally mirrored instance when the allocator picks', () => {
    expect(nodes(sliceNodes(only(['web1']), { nodes: 'all' }))).toHaveLength(4);
    // DRBD: the allocator is never asked, the secondary is the target.
    expect(nodes(sliceNodes(only(['web1']), { allocator: true }))).toEqual(['node1', 'node2']);
    expect(nodes(sliceNodes(only(['files1']), { allocator: true }))).toHaveLength(4);
    // a named target: only it
    expect(nodes(sliceNodes(only(['files1']), { allocator: true, nodes: ['node4'] }))).toEqual(['node1', 'node2', 'node4']);
    // without the allocator, a sharedfile instance keeps its own nodes only
    expect(nodes(sliceNodes(only(['files1']), {}))).toEqual(['node1', 'node2']);
    expect(nodes(sliceNodes(only(['files1']), { allocator: false }))).toEqual(['node1', 'node2']);
    // one externally mirrored instance among others is enough
    expect(nodes(sliceNodes(only(['web1', 'files1']), { allocator: true }))).toHaveLength(4);
    expect(nodes(sliceNodes(only([]), { allocator: true }))).toEqual(['node1']);
  });
});

describe('operationSlice', () => {
  test('the instance; every node for the cleanup; the named target; the allocator asked otherwise', () => {
    expect(operationSlice({ instance: 'web1', cleanup: false })).toEqual({ instances: ['web1'], allocator: true });
    expect(operationSlice({ instance: 'web1', cleanup: false, targetNode: undefined })).toEqual({ instances: ['web1'], allocator: true });
    expect(operationSlice({ instance: 'web1', cleanup: false, targetNode: 'node3' })).toEqual({
      instances: ['web1'],
      allocator: true,
      nodes: ['node3'],
    });
    expect(operationSlice({ instance: 'web1', cleanup: true, targetNode: 'node3' })).toEqual({
      instances: ['web1'],
      allocator: true,
      nodes: 'all',
    });
    expect(operationSlice({ instance: 'web1', cleanup: true })).toEqual({ instances: ['web1'], allocator: true, nodes: 'all' });
  });
});
