/**
 * Snapshots are slices (issue 12): the configuration store's scope (by name, by primary node), the
 * nodes a slice keeps (the master, the instances' own, a named target; all for the allocator or the
 * cleanup) and the configuration activity that combines them without secrets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { createConfigActivities } from '../../activities/config.js';
import { defaultClusterConfig } from '../../adapters/sim/cluster.js';
import { openSqliteStore } from '../../adapters/store/open.js';
import type { SqlConfigStore } from '../../adapters/store/sql-store.js';
import { operationSlice, sliceNodes, sliceScope } from '../../domain/slices.js';
import type { ClusterSnapshot } from '../../domain/types.js';

const dirs: string[] = [];
const stores: SqlConfigStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The demo cluster (web1 node1/node2, web2 node2/node3, web3 node3/node1, db1 node1/node3, files1 on node2) plus a fourth node. */
async function store(): Promise<SqlConfigStore> {
  const dir = mkdtempSync(join(tmpdir(), 'slices-test-'));
  dirs.push(dir);
  const cfg = defaultClusterConfig('slices');
  cfg.nodes.node4 = { ...cfg.nodes.node3!, name: 'node4', uuid: 'node-4', primaryIp: '192.0.2.14', secondaryIp: '198.51.100.14' };
  const s = openSqliteStore(dir);
  stores.push(s);
  await s.initialise(cfg);
  return s;
}

const keys = (s: ClusterSnapshot) => ({ instances: Object.keys(s.instances).sort(), nodes: Object.keys(s.nodes).sort() });
const prereq = { failover: false, cleanup: false, allowFailover: true, ignoreIpolicy: false };

describe('the configuration store scope', () => {
  test('primaryOn keeps the instances whose primary is the node; with names, both must hold', async () => {
    const s = await store();
    expect(Object.keys((await s.snapshot({ primaryOn: 'node1' })).instances).sort()).toEqual(['db1', 'web1']);
    expect(Object.keys((await s.snapshot({ primaryOn: 'node1', instances: ['web1', 'web2'] })).instances)).toEqual(['web1']);
    expect((await s.snapshot({ primaryOn: 'node9' })).instances).toEqual({});
    expect(Object.keys((await s.snapshot({ primaryOn: 'node1' })).nodes)).toHaveLength(4);
  });
});

describe('sliceNodes', () => {
  test('the master, the instances’ nodes and named nodes; all for "all" or an externally mirrored instance under the allocator', async () => {
    const full = await (await store()).snapshot();
    const only = (names: string[]): ClusterSnapshot => ({
      ...full,
      instances: Object.fromEntries(names.map((n) => [n, full.instances[n]!])),
    });
    expect(keys(sliceNodes(only(['web2']), {}))).toEqual({ instances: ['web2'], nodes: ['node1', 'node2', 'node3'] });
    expect(keys(sliceNodes(only(['web1']), {})).nodes).toEqual(['node1', 'node2']);
    expect(keys(sliceNodes(only(['web1']), { nodes: ['node4', 'nodeX'] })).nodes).toEqual(['node1', 'node2', 'node4']);
    expect(keys(sliceNodes(only(['web1']), { nodes: 'all' })).nodes).toHaveLength(4);
    // DRBD: the allocator is never asked, its secondary is the target.
    expect(keys(sliceNodes(only(['web1']), { allocator: true })).nodes).toEqual(['node1', 'node2']);
    // sharedfile without a target: every node is a candidate; with one, only it.
    expect(keys(sliceNodes(only(['files1']), { allocator: true })).nodes).toHaveLength(4);
    expect(keys(sliceNodes(only(['files1']), { allocator: true, nodes: ['node4'] })).nodes).toEqual(['node1', 'node2', 'node4']);
    expect(sliceScope({ instances: ['web1'], nodes: 'all', primaryOn: 'node1' })).toEqual({ instances: ['web1'], primaryOn: 'node1' });
  });
});

describe('loadClusterSnapshot', () => {
  test('an operation’s slice: its instance without secrets, the nodes it needs; without a slice everything', async () => {
    const s = await store();
    const { loadClusterSnapshot } = createConfigActivities({ config: s });
    const web1 = await loadClusterSnapshot(operationSlice({ ...prereq, instance: 'web1' }));
    expect(keys(web1)).toEqual({ instances: ['web1'], nodes: ['node1', 'node2'] });
    expect(JSON.stringify(web1)).not.toContain('secret');
    const cleanup = await loadClusterSnapshot(operationSlice({ ...prereq, instance: 'web1', cleanup: true }));
    expect(keys(cleanup)).toEqual({ instances: ['web1'], nodes: ['node1', 'node2', 'node3', 'node4'] });
    const files = await loadClusterSnapshot(operationSlice({ ...prereq, instance: 'files1' }));
    expect(keys(files).nodes).toHaveLength(4);
    const filesTo = await loadClusterSnapshot(operationSlice({ ...prereq, instance: 'files1', targetNode: 'node3' }));
    expect(keys(filesTo)).toEqual({ instances: ['files1'], nodes: ['node1', 'node2', 'node3'] });
    const unknown = await loadClusterSnapshot(operationSlice({ ...prereq, instance: 'nope', targetNode: 'node4' }));
    expect(keys(unknown)).toEqual({ instances: [], nodes: ['node1', 'node4'] });
    const nodeOp = await loadClusterSnapshot({ primaryOn: 'node3', nodes: 'all' });
    expect(keys(nodeOp)).toEqual({ instances: ['web3'], nodes: ['node1', 'node2', 'node3', 'node4'] });
    const all = await loadClusterSnapshot();
    expect(keys(all).instances).toEqual(['db1', 'files1', 'web1', 'web2', 'web3']);
    expect(JSON.stringify(all)).not.toContain('secret');
  });
});
