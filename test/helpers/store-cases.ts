/**
 * The configuration store's behaviour, run against each engine (test/unit: SQLite; test/store:
 * PostgreSQL): memory reservations, compare-and-set of the primary, node and instance flags with
 * their serial bumps, evacuation slots, snapshots of a scope, validation of what is stored, import.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { defaultClusterConfig } from '../../adapters/sim/cluster.js';
import { ConfigError } from '../../adapters/store/config-store.js';
import { openSqliteStore } from '../../adapters/store/open.js';
import type { SqlConfigStore, SqlConfigStoreOptions } from '../../adapters/store/sql-store.js';
import type { ReserveMemoryRequest, SlotRequest } from '../../domain/ports.js';

/** An engine under test: `fresh` makes a new empty database, `open` a store on it. */
export interface StoreEngineCase {
  name: string;
  fresh(): Promise<string>;
  open(location: string, opts?: SqlConfigStoreOptions): SqlConfigStore;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'store-test-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** SQLite stores in temporary data directories. */
export const SQLITE: StoreEngineCase = {
  name: 'SQLite',
  fresh: async () => tempDir(),
  open: (home, opts) => openSqliteStore(home, opts),
};

const req = (opId: string, over: Partial<ReserveMemoryRequest> = {}): ReserveMemoryRequest => ({
  opId,
  node: 'node2',
  instance: 'web1',
  needed: 1024,
  wanted: 2048,
  reportedFree: 3000,
  workflowId: `wf-${opId}`,
  runId: `run-${opId}`,
  ...over,
});

export function configStoreCases(e: StoreEngineCase): void {
  const open = (location: string, opts?: SqlConfigStoreOptions): SqlConfigStore => {
    const s = e.open(location, opts);
    cleanups.push(() => s.close());
    return s;
  };
  const configStore = async (opts: SqlConfigStoreOptions = {}): Promise<SqlConfigStore> => {
    const store = open(await e.fresh(), opts);
    await store.initialise(defaultClusterConfig('storetest'));
    return store;
  };

  describe(`${e.name}: memory reservations`, () => {
    test('three concurrent reservations never overcommit: the later ones see reduced free memory', async () => {
      const store = await configStore();
      const rs = await Promise.all(['a', 'b', 'c'].map((id) => store.reserveMemory(req(id))));
      expect(rs.reduce((a, r) => a + r.reserved, 0)).toBeLessThanOrEqual(3000);
      const sorted = [...rs].sort((x, y) => y.reserved - x.reserved);
      // the first gets all it wants; then 952 MiB remain, less than the 1024 needed
      expect(sorted).toEqual([
        { free: 3000, reserved: 2048 },
        { free: 952, reserved: 0 },
        { free: 952, reserved: 0 },
      ]);
      expect(await store.reservedMemory()).toEqual({ node2: 2048 });
      expect(Object.keys((await store.config()).reservations)).toHaveLength(1);
    });

    test('concurrent reservations that fit get min(wanted, free) and together use exactly the free memory', async () => {
      const store = await configStore();
      const rs = await Promise.all(['a', 'b', 'c'].map((id) => store.reserveMemory(req(id, { needed: 512, wanted: 1024 }))));
      expect(rs.map((r) => r.reserved).sort((a, b) => a - b)).toEqual([952, 1024, 1024]);
      expect(rs.map((r) => r.free).sort((a, b) => a - b)).toEqual([952, 1976, 3000]);
      expect(await store.reservedMemory()).toEqual({ node2: 3000 });
    });

    test("reservations on other nodes do not reduce a node's free memory", async () => {
      const store = await configStore();
      await store.reserveMemory(req('a', { node: 'node3' }));
      expect(await store.reserveMemory(req('b'))).toEqual({ free: 3000, reserved: 2048 });
      expect(await store.reservedMemory()).toEqual({ node2: 2048, node3: 2048 });
    });

    test('reserving again under the same opId is idempotent', async () => {
      const store = await configStore();
      const first = await store.reserveMemory(req('a'));
      const again = await store.reserveMemory(req('a'));
      expect(again).toEqual(first);
      expect(first).toEqual({ free: 3000, reserved: 2048 });
      const cfg = await store.config();
      expect(cfg.reservations).toEqual({ a: { node: 'node2', memory: 2048, instance: 'web1', workflowId: 'wf-a', runId: 'run-a' } });
      expect(await store.reservedMemory()).toEqual({ node2: 2048 });
      expect(await store.reservedMemory('a')).toEqual({});
    });

    test('the reservations read alone are those the whole configuration holds', async () => {
      const store = await configStore();
      expect(await store.reservations()).toEqual({});
      await store.reserveMemory(req('b', { node: 'node3' }));
      await store.reserveMemory(req('a'));
      const alone = await store.reservations();
      expect(alone).toEqual((await store.config()).reservations);
      expect(Object.keys(alone)).toEqual(['a', 'b']);
      expect(alone.b).toEqual({ node: 'node3', memory: 2048, instance: 'web1', workflowId: 'wf-b', runId: 'run-b' });
    });

    test('releaseReservation frees the memory for the next operation', async () => {
      const store = await configStore();
      await store.reserveMemory(req('a'));
      expect(await store.reserveMemory(req('b'))).toEqual({ free: 952, reserved: 0 });
      await store.releaseReservation('a');
      expect((await store.config()).reservations).toEqual({});
      expect(await store.reserveMemory(req('b'))).toEqual({ free: 3000, reserved: 2048 });
      const serial = (await store.config()).serial;
      await store.releaseReservation('never-made');
      expect((await store.config()).serial).toBe(serial);
      expect(await store.reservedMemory()).toEqual({ node2: 2048 });
    });

    test('reservations of operations that no longer run are dropped; undecidable ones are kept', async () => {
      const home = await e.fresh();
      const plain = open(home);
      await plain.initialise(defaultClusterConfig('storetest'));
      await plain.reserveMemory(req('dead', { node: 'node2', wanted: 1024 }));
      await plain.reserveMemory(req('unknown', { node: 'node2', wanted: 1024 }));
      await plain.reserveMemory(req('alive', { node: 'node3' }));

      const asked: string[] = [];
      const store = open(home, {
        isOperationRunning: async (workflowId) => {
          asked.push(workflowId);
          if (workflowId === 'wf-unknown') throw new Error('server unreachable');
          return workflowId !== 'wf-dead';
        },
      });
      // free 3000 minus only the undecidable 1024 on node2; only node2's holders are asked
      expect(await store.reserveMemory(req('new'))).toEqual({ free: 1976, reserved: 1976 });
      expect(Object.keys((await store.config()).reservations).sort()).toEqual(['alive', 'new', 'unknown']);
      expect(asked.sort()).toEqual(['wf-dead', 'wf-unknown']);
      expect(await store.reservedMemory()).toEqual({ node2: 1024 + 1976, node3: 2048 });
    });

    test('holders are asked about only when their reservations stand in the way', async () => {
      const home = await e.fresh();
      const plain = open(home);
      await plain.initialise(defaultClusterConfig('storetest'));
      await plain.reserveMemory(req('dead', { node: 'node2', wanted: 1024, needed: 512 }));
      const asked: string[] = [];
      const store = open(home, {
        isOperationRunning: async (workflowId) => {
          asked.push(workflowId);
          return workflowId !== 'wf-dead';
        },
      });
      // 3000 free, 1024 held: 1000 wanted fits without asking
      expect(await store.reserveMemory(req('small', { wanted: 1000, needed: 512 }))).toEqual({ free: 1976, reserved: 1000 });
      expect(asked).toEqual([]);
      // 2000 wanted does not fit beside 'dead' and 'small': their holders are asked, the dead one dropped
      expect(await store.reserveMemory(req('big', { wanted: 2000, needed: 512 }))).toEqual({ free: 2000, reserved: 2000 });
      expect(asked.sort()).toEqual(['wf-dead', 'wf-small']);
      expect(Object.keys((await store.config()).reservations).sort()).toEqual(['big', 'small']);
    });

    test('pruning on some nodes asks about and drops only their reservations', async () => {
      const home = await e.fresh();
      const plain = open(home);
      await plain.initialise(defaultClusterConfig('storetest'));
      await plain.reserveMemory(req('dead2', { node: 'node2', wanted: 512, needed: 512 }));
      await plain.reserveMemory(req('dead3', { node: 'node3', wanted: 512, needed: 512 }));
      const asked: string[] = [];
      const store = open(home, {
        isOperationRunning: async (workflowId) => {
          asked.push(workflowId);
          return false;
        },
      });
      expect(await store.pruneReservations(['node3', 'node9'])).toEqual(['dead3']);
      expect(asked).toEqual(['wf-dead3']);
      expect(Object.keys((await store.config()).reservations)).toEqual(['dead2']);
      expect(await store.pruneReservations()).toEqual(['dead2']);
      expect((await store.config()).reservations).toEqual({});
    });
  });

  describe(`${e.name}: configuration changes`, () => {
    test('setInstancePrimary is a compare-and-set: a different expected primary is a conflict and changes nothing', async () => {
      const store = await configStore();
      const serial = (await store.config()).serial;
      const err = await store.setInstancePrimary('web1', 'node3', 'node2').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).kind).toBe('conflict');
      expect((err as ConfigError).message).toMatch(/primary is node1, expected node3/);
      const cfg = await store.config();
      expect(cfg.instances.web1!.primaryNode).toBe('node1');
      expect(cfg.serial).toBe(serial);
    });

    test('setInstancePrimary moves the primary when it matches, and is idempotent once moved', async () => {
      const store = await configStore();
      const serial = (await store.config()).serial;
      expect((await store.setInstancePrimary('web1', 'node1', 'node2')).primaryNode).toBe('node2');
      expect((await store.config()).serial).toBe(serial + 1);
      // a retried activity: already the new primary
      expect((await store.setInstancePrimary('web1', 'node1', 'node2')).primaryNode).toBe('node2');
      const cfg = await store.config();
      expect(cfg.instances.web1!.primaryNode).toBe('node2');
      expect(cfg.serial).toBe(serial + 1);
      expect((await store.snapshot()).instances.web1!.primaryNode).toBe('node2');
    });

    test('setInstancePrimary rejects unknown instances and nodes as not-found', async () => {
      const store = await configStore();
      await expect(store.setInstancePrimary('nope', 'node1', 'node2')).rejects.toMatchObject({ kind: 'not-found' });
      await expect(store.setInstancePrimary('web1', 'node1', 'node9')).rejects.toMatchObject({ kind: 'not-found' });
      expect((await store.config()).instances.web1!.primaryNode).toBe('node1');
    });

    test('modifyNode refuses to mark the master offline but marks other nodes offline', async () => {
      const store = await configStore();
      const serial = (await store.config()).serial;
      const err = await store.modifyNode('node1', { offline: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).kind).toBe('invalid');
      expect((await store.config()).nodes.node1!.offline).toBe(false);
      expect((await store.config()).serial).toBe(serial);

      expect((await store.modifyNode('node2', { offline: true })).offline).toBe(true);
      const cfg = await store.config();
      expect(cfg.nodes.node2!.offline).toBe(true);
      expect(cfg.serial).toBe(serial + 1);
    });
  });

  describe(`${e.name}: transactions across connections`, () => {
    test('reservations from several connections at once never overcommit', async () => {
      const home = await e.fresh();
      await open(home).initialise(defaultClusterConfig('storetest'));
      const stores = [open(home), open(home), open(home), open(home)];
      const rs = await Promise.all(
        Array.from({ length: 12 }, (_, i) => stores[i % 4]!.reserveMemory(req(`op${i}`, { needed: 256, wanted: 512, reportedFree: 3000 }))),
      );
      const total = rs.reduce((a, r) => a + r.reserved, 0);
      expect(total).toBe(3000);
      expect(rs.filter((r) => r.reserved > 0)).toHaveLength(6);
      expect(await stores[0]!.reservedMemory()).toEqual({ node2: 3000 });
    });

    test('two connections moving the same primary: one commits, the other sees it done; a stale expectation conflicts', async () => {
      const home = await e.fresh();
      await open(home).initialise(defaultClusterConfig('storetest'));
      const [a, b] = [open(home), open(home)];
      const serial = (await a.config()).serial;
      const moved = await Promise.all([a.setInstancePrimary('web1', 'node1', 'node2'), b.setInstancePrimary('web1', 'node1', 'node2')]);
      expect(moved.map((i) => i.primaryNode)).toEqual(['node2', 'node2']);
      expect((await b.config()).serial).toBe(serial + 1);
      await expect(a.setInstancePrimary('web1', 'node1', 'node3')).rejects.toMatchObject({ kind: 'conflict' });
      expect((await a.config()).instances.web1!.primaryNode).toBe('node2');
    });
  });

  describe(`${e.name}: what is stored`, () => {
    test('a new database holds no configuration; reading it is not-found', async () => {
      const s = open(await e.fresh());
      expect(await s.exists()).toBe(false);
      await expect(s.config()).rejects.toMatchObject({ kind: 'not-found' });
      await expect(s.snapshot()).rejects.toMatchObject({ kind: 'not-found' });
    });

    test('the configuration reads back as stored (reservations and leases too), and the snapshot leaves them out', async () => {
      const s = open(await e.fresh());
      const cfg = defaultClusterConfig('storetest');
      await s.initialise(cfg);
      await s.reserveMemory(req('a'));
      await s.acquireSlot(slot('l1'));
      const back = await s.config();
      expect({ ...back, reservations: {}, leases: {} }).toEqual(cfg);
      expect(Object.keys(back.reservations)).toEqual(['a']);
      expect(back.leases.l1).toEqual({ workflowId: 'node/node1', runId: 'r1', instance: 'web1', source: 'node1', target: 'node2' });
      const { reservations: _r, leases: _l, ...snap } = back;
      expect(await s.snapshot()).toEqual(snap);
    });

    test('a snapshot with a scope has only the named instances and nodes (unknown names left out)', async () => {
      const s = await configStore();
      const snap = await s.snapshot({ instances: ['web1', 'nope'], nodes: ['node1', 'node2'] });
      expect(Object.keys(snap.instances)).toEqual(['web1']);
      expect(Object.keys(snap.nodes)).toEqual(['node1', 'node2']);
      expect(snap.instances.web1).toEqual((await s.config()).instances.web1);
      const empty = await s.snapshot({ instances: [], nodes: [] });
      expect(empty.instances).toEqual({});
      expect(empty.nodes).toEqual({});
      expect(empty.cluster.name).toBe('storetest');
    });

    test('a snapshot of the instances whose primary is a node (a node operation), alone or with names', async () => {
      const s = await configStore();
      const full = await s.config();
      const on1 = await s.snapshot({ primaryOn: 'node1' });
      expect(Object.keys(on1.instances)).toEqual(['db1', 'web1']);
      expect(on1.instances.db1).toEqual(full.instances.db1); // with its disks
      expect(Object.keys(on1.nodes)).toHaveLength(Object.keys(full.nodes).length);
      expect(Object.keys((await s.snapshot({ primaryOn: 'node1', instances: ['web1', 'web2'] })).instances)).toEqual(['web1']);
      expect((await s.snapshot({ primaryOn: 'node9' })).instances).toEqual({});
      await s.setInstancePrimary('web1', 'node1', 'node2');
      expect(Object.keys((await s.snapshot({ primaryOn: 'node1' })).instances)).toEqual(['db1']);
    });

    test('setDisksActive and modifyInstance change the instance and bump the serial; no change, no bump', async () => {
      const s = await configStore();
      const serial = (await s.config()).serial;
      const active = (await s.config()).instances.web1!.disksActive;
      expect((await s.setDisksActive('web1', active)).disksActive).toBe(active);
      expect((await s.config()).serial).toBe(serial);
      expect((await s.setDisksActive('web1', !active)).disksActive).toBe(!active);
      expect((await s.modifyInstance('web1', { adminState: 'down' })).adminState).toBe('down');
      const cfg = await s.config();
      expect(cfg.serial).toBe(serial + 2);
      expect(cfg.instances.web1).toMatchObject({ disksActive: !active, adminState: 'down' });
      await expect(s.modifyInstance('nope', { adminState: 'up' })).rejects.toMatchObject({ kind: 'not-found' });
      await expect(s.modifyNode('nope', { drained: true })).rejects.toMatchObject({ kind: 'not-found' });
    });

    test('a configuration with fields the schema does not know is refused, not stored without them', async () => {
      const s = await configStore();
      const cfg = defaultClusterConfig('other') as unknown as { nodes: Record<string, Record<string, unknown>> };
      cfg.nodes.node1!.rack = 'r12';
      const err = await s.initialise(cfg as never).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).kind).toBe('invalid');
      expect((err as ConfigError).message).toContain('nodes.node1.rack');
      expect((await s.config()).cluster.name).toBe('storetest');
    });

    test('import replaces the configuration, keeps a backup of the previous one and continues its serial', async () => {
      const s = await configStore();
      await s.setInstancePrimary('web1', 'node1', 'node2');
      const before = await s.config();
      const dir = tempDir();
      const r = await s.importConfig(defaultClusterConfig('imported'), dir);
      expect(r.config.serial).toBe(before.serial + 1);
      const after = await s.config();
      expect(after.cluster.name).toBe('imported');
      expect(after.instances.web1!.primaryNode).toBe('node1');
      expect(JSON.parse(readFileSync(r.backup!, 'utf8'))).toEqual(before);
      expect(statSync(r.backup!).mode & 0o777).toBe(0o600);
    });

    test('import is refused while a reservation or a lease exists, and changes nothing', async () => {
      const s = await configStore();
      await s.reserveMemory(req('a'));
      const dir = tempDir();
      await expect(s.importConfig(defaultClusterConfig('imported'), dir)).rejects.toMatchObject({ kind: 'conflict' });
      await s.releaseReservation('a');
      await s.acquireSlot(slot('l1'));
      await expect(s.importConfig(defaultClusterConfig('imported'), dir)).rejects.toMatchObject({ kind: 'conflict' });
      expect((await s.config()).cluster.name).toBe('storetest');
      expect(readdirSync(dir)).toEqual([]);
    });
  });
}

const LIMITS = { maxConcurrent: 3, maxOutgoing: 2, maxIncoming: 1 };
const slot = (id: string, source = 'node1', target: string | null = 'node2', workflowId = 'node/node1'): SlotRequest => ({
  id,
  workflowId,
  runId: 'r1',
  instance: id === 'l1' ? 'web1' : id,
  source,
  target,
  limits: LIMITS,
});

export function leaseCases(e: StoreEngineCase): void {
  const store = async (opts: SqlConfigStoreOptions = {}): Promise<SqlConfigStore> => {
    const s = e.open(await e.fresh(), opts);
    cleanups.push(() => s.close());
    await s.initialise(defaultClusterConfig('c1'));
    return s;
  };

  describe(`${e.name}: evacuation slots`, () => {
    test('granted while C, O and I leave room across every node operation; each refusal names its limit', async () => {
      const s = await store();
      expect(await s.acquireSlot(slot('a', 'node1', 'node2'))).toEqual({ granted: true });
      expect(await s.acquireSlot(slot('b', 'node1', 'node2'))).toEqual({
        granted: false,
        limit: 'target',
        reason: '1 arrive on node2 (at most 1)',
      });
      expect(await s.acquireSlot(slot('b', 'node1', 'node3'))).toEqual({ granted: true });
      expect(await s.acquireSlot(slot('c', 'node1', null))).toMatchObject({ granted: false, limit: 'source' });
      // Another node operation's child counts too.
      expect(await s.acquireSlot(slot('d', 'node2', null, 'node/node2'))).toEqual({ granted: true });
      expect(await s.acquireSlot(slot('e', 'node3', null, 'node/node3'))).toEqual({
        granted: false,
        limit: 'cluster',
        reason: '3 evacuation migrations run in the cluster (at most 3)',
      });
      expect(Object.keys((await s.config()).leases).sort()).toEqual(['a', 'b', 'd']);
    });

    test('idempotent per lease id; released ones free their slot; the snapshot has no leases', async () => {
      const s = await store();
      expect(await s.acquireSlot(slot('a', 'node1', 'node2'))).toEqual({ granted: true });
      expect(await s.acquireSlot(slot('a', 'node1', 'node2'))).toEqual({ granted: true });
      expect(Object.keys((await s.config()).leases)).toEqual(['a']);
      expect('leases' in (await s.snapshot())).toBe(false);
      await s.releaseSlot('a');
      await s.releaseSlot('a');
      expect((await s.config()).leases).toEqual({});
      expect(await s.acquireSlot(slot('b', 'node1', 'node2'))).toEqual({ granted: true });
    });

    test('the leases of a node operation that no longer runs are dropped when a slot is asked for', async () => {
      const running = new Set(['node/node1']);
      const s = await store({ isOperationRunning: async (id) => running.has(id) });
      await s.acquireSlot(slot('a', 'node2', 'node3', 'node/node2'));
      running.add('node/node2');
      await s.acquireSlot(slot('b', 'node2', 'node1', 'node/node2'));
      running.delete('node/node2');
      expect(await s.acquireSlot(slot('c', 'node1', 'node3'))).toEqual({ granted: true });
      expect(Object.keys((await s.config()).leases)).toEqual(['c']);
    });
  });
}
