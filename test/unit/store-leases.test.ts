/**
 * The evacuation slots of node operations in the configuration store: granted under the limits
 * across the cluster (C in all, O per source, I per target), idempotent per lease, released, and
 * dropped once their node operation no longer runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { defaultClusterConfig } from '../../adapters/sim/cluster.js';
import { FileConfigStore, type FileConfigStoreOptions } from '../../adapters/store/config-store.js';
import type { SlotRequest } from '../../domain/ports.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function store(opts: FileConfigStoreOptions = {}): Promise<FileConfigStore> {
  const d = mkdtempSync(join(tmpdir(), 'leases-test-'));
  dirs.push(d);
  const s = FileConfigStore.forHome(d, opts);
  await s.initialise(defaultClusterConfig('c1'));
  return s;
}

const LIMITS = { maxConcurrent: 3, maxOutgoing: 2, maxIncoming: 1 };
const req = (id: string, source: string, target: string | null, workflowId = 'node/node1'): SlotRequest => ({
  id,
  workflowId,
  runId: 'r1',
  instance: id,
  source,
  target,
  limits: LIMITS,
});

describe('evacuation slots', () => {
  test('granted while C, O and I leave room across every node operation; each refusal names its limit', async () => {
    const s = await store();
    expect(await s.acquireSlot(req('a', 'node1', 'node2'))).toEqual({ granted: true });
    expect(await s.acquireSlot(req('b', 'node1', 'node2'))).toEqual({
      granted: false,
      limit: 'target',
      reason: '1 arrive on node2 (at most 1)',
    });
    expect(await s.acquireSlot(req('b', 'node1', 'node3'))).toEqual({ granted: true });
    expect(await s.acquireSlot(req('c', 'node1', null))).toMatchObject({ granted: false, limit: 'source' });
    // Another node operation's child counts too.
    expect(await s.acquireSlot(req('d', 'node2', null, 'node/node2'))).toEqual({ granted: true });
    expect(await s.acquireSlot(req('e', 'node3', null, 'node/node3'))).toEqual({
      granted: false,
      limit: 'cluster',
      reason: '3 evacuation migrations run in the cluster (at most 3)',
    });
    expect(Object.keys(s.file.read().leases).sort()).toEqual(['a', 'b', 'd']);
  });

  test('idempotent per lease id; released ones free their slot; the snapshot has no leases', async () => {
    const s = await store();
    expect(await s.acquireSlot(req('a', 'node1', 'node2'))).toEqual({ granted: true });
    expect(await s.acquireSlot(req('a', 'node1', 'node2'))).toEqual({ granted: true });
    expect(Object.keys(s.file.read().leases)).toEqual(['a']);
    expect('leases' in (await s.snapshot())).toBe(false);
    await s.releaseSlot('a');
    await s.releaseSlot('a');
    expect(s.file.read().leases).toEqual({});
    expect(await s.acquireSlot(req('b', 'node1', 'node2'))).toEqual({ granted: true });
  });

  test('the leases of a node operation that no longer runs are dropped when a slot is asked for', async () => {
    const running = new Set(['node/node1']);
    const s = await store({ isOperationRunning: async (id) => running.has(id) });
    await s.acquireSlot(req('a', 'node2', 'node3', 'node/node2'));
    running.add('node/node2');
    await s.acquireSlot(req('b', 'node2', 'node1', 'node/node2'));
    running.delete('node/node2');
    expect(await s.acquireSlot(req('c', 'node1', 'node3'))).toEqual({ granted: true });
    expect(Object.keys(s.file.read().leases)).toEqual(['c']);
  });
});
