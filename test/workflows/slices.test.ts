/**
 * Snapshots are slices (issue 12): an operation loads the cluster parameters plus the instance (or,
 * for a node operation, the node's primary instances) and the nodes it acts on. Run on the demo
 * cluster and on the same cluster with 40 more DRBD instances elsewhere: the snapshots an operation
 * records are the same, and no other instance's name or DRBD secret is in its history.
 */
import type { Payload } from '@temporalio/common';
import type { WorkflowHandle } from '@temporalio/client';
import { describe, expect, test } from 'vitest';
import { migrateInstance, shutdownInstance } from '../../client/api.js';
import { nodeOperationResult, startNodeMigration } from '../../client/node-api.js';
import type { ClusterConfig, ClusterSnapshot, Instance } from '../../domain/types.js';
import { decodePayload } from '../helpers/codec.js';
import { useHarness } from '../helpers/harness.js';

const h = useHarness();
const EXTRA = 40;

/** `n` stopped DRBD instances on node2/node3 (none on node1), each with its own secret. */
function addInstances(cfg: ClusterConfig, n: number): void {
  const base = cfg.instances.web2!;
  for (let i = 0; i < n; i++) {
    const name = `extra${String(i).padStart(3, '0')}`;
    const inst: Instance = structuredClone(base);
    inst.name = name;
    inst.uuid = `inst-extra-${i}`;
    inst.adminState = 'down';
    inst.disksActive = false;
    inst.disks = inst.disks.map((d, k) => ({
      ...d,
      uuid: `disk-extra-${i}-${k}`,
      drbd: { nodes: ['node2', 'node3'], minors: [100 + i, 100 + i], port: 12000 + i, secret: `extra-secret-${i}` },
    }));
    inst.nics = inst.nics.map((nic) => ({ ...nic, uuid: `nic-extra-${i}`, mac: `aa:00:00:00:01:${i.toString(16).padStart(2, '0')}` }));
    cfg.instances[name] = inst;
  }
}

/** The decoded payloads of a history, and the snapshots its `loadClusterSnapshot` activities returned. */
async function read(handle: WorkflowHandle): Promise<{ text: string; snapshots: ClusterSnapshot[] }> {
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  const loads = new Set(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'loadClusterSnapshot')
      .map((e) => String(e.eventId)),
  );
  const snapshots: ClusterSnapshot[] = [];
  const texts: string[] = [];
  for (const e of events) {
    const payloads = Object.values(e)
      .filter((a): a is Record<string, unknown> => !!a && typeof a === 'object')
      .flatMap((a) => payloadsIn(a));
    for (const p of payloads) texts.push(JSON.stringify(await decodePayload(p)));
    const done = e.activityTaskCompletedEventAttributes;
    if (done && loads.has(String(done.scheduledEventId)))
      snapshots.push((await decodePayload(done.result!.payloads![0]!)) as ClusterSnapshot);
  }
  return { text: texts.join('\n'), snapshots };
}

function payloadsIn(o: unknown, out: Payload[] = []): Payload[] {
  if (!o || typeof o !== 'object' || o instanceof Uint8Array) return out;
  const p = o as Payload;
  if (p.metadata && typeof p.metadata === 'object' && 'encoding' in p.metadata) {
    out.push(p);
    return out;
  }
  for (const v of Object.values(o)) payloadsIn(v, out);
  return out;
}

/** What a snapshot holds, without the cluster's name (each test cluster has its own). */
const shape = (s: ClusterSnapshot) => ({ instances: Object.keys(s.instances).sort(), nodes: Object.keys(s.nodes).sort() });
const size = (s: ClusterSnapshot) => JSON.stringify({ ...s, cluster: { ...s.cluster, name: '' } }).length;

async function operations(extra: number) {
  const { c } = await h.cluster({ configure: (cfg) => addInstances(cfg, extra) });
  const opts = { cluster: c.name, snapshot: c.cfg() };
  const env = h.env();
  expect((await migrateInstance(env.client, { instance: 'web1' }, opts)).outcome).toBe('migrated');
  const migrate = await read(env.client.workflow.getHandle('instance/web1'));
  expect((await shutdownInstance(env.client, { instance: 'web2' }, opts)).outcome).toBe('stopped');
  const shutdown = await read(env.client.workflow.getHandle('instance/web2'));
  const node = await startNodeMigration(env.client, { node: 'node3' }, { cluster: c.name, snapshot: c.cfg() });
  expect((await nodeOperationResult(node)).errors).toBe(0);
  const nodeOp = await read(node);
  const child = await read(env.client.workflow.getHandle('instance/web3'));
  const secrets = Object.values(c.cfg().instances).flatMap((i) => i.disks.flatMap((d) => (d.drbd?.secret ? [d.drbd.secret] : [])));
  return { migrate, shutdown, nodeOp, child, secrets };
}

describe('an operation loads only what it acts on', () => {
  test('with 40 more instances in the cluster, the snapshots are the same and hold no other instance', async () => {
    const small = await operations(0);
    const large = await operations(EXTRA);
    expect(large.secrets.length).toBe(small.secrets.length + EXTRA);

    expect(shape(large.migrate.snapshots[0]!)).toEqual({ instances: ['web1'], nodes: ['node1', 'node2'] });
    expect(shape(large.shutdown.snapshots[0]!)).toEqual({ instances: ['web2'], nodes: ['node1', 'node2', 'node3'] });
    expect(shape(large.nodeOp.snapshots[0]!)).toEqual({ instances: ['web3'], nodes: ['node1', 'node2', 'node3'] });
    expect(shape(large.child.snapshots[0]!)).toEqual({ instances: ['web3'], nodes: ['node1', 'node3'] });
    expect(large.migrate.text).toContain('inst-1'); // web1's uuid: the decoded payloads are read
    for (const k of ['migrate', 'shutdown', 'nodeOp', 'child'] as const) {
      const [a, b] = [small[k], large[k]];
      expect(b.snapshots.map(shape), k).toEqual(a.snapshots.map(shape));
      expect(b.snapshots.map(size), k).toEqual(a.snapshots.map(size));
      expect(b.text, k).not.toMatch(/extra\d{3}|inst-extra|extra-secret/);
      for (const s of large.secrets) expect(b.text, `${s} in the ${k} history`).not.toContain(s);
    }
  }, 240_000);
});
