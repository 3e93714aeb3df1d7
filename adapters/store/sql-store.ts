/**
 * The cluster configuration store over SQL (SQLite or PostgreSQL, adapters/store/engines.ts): one row
 * per cluster, node, instance, disk, reservation and lease (adapters/store/schema.ts), so a write
 * touches only what it changes. Every read-check-write is one transaction: the compare-and-set of an
 * instance's primary and its serial bump, a memory reservation and the free-memory check it depends
 * on, an evacuation slot and the limits it is checked against.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ConfigError,
  type ConfigStore,
  type ReserveMemoryRequest,
  type SlotAnswer,
  type SlotRequest,
  type SnapshotScope,
} from '../../domain/ports.js';
import {
  ClusterConfigSchema,
  ClusterSchema,
  InstanceSchema,
  NodeSchema,
  type ClusterConfig,
  type ClusterSnapshot,
  type Instance,
  type Node,
  type Reservation,
} from '../../domain/types.js';
import { parseConfig } from './config-store.js';
import type { Engine, Tx } from './engines.js';
import { migrate } from './migrations.js';
import {
  bumpSerial,
  deadHolders,
  loadInstance,
  nonEmpty,
  readAll,
  readReservations,
  replaceAll,
  sortByName,
  type Holder,
} from './queries.js';
import { CLUSTER_ROW_ID, configFromRows, groupDisks, instanceFromRows, leaseFromRow, nodeFromRow, type ConfigRows } from './schema.js';

export interface SqlConfigStoreOptions {
  /**
   * Tells whether the operation owning a reservation or lease still runs. Those of finished
   * operations (e.g. terminated workflows, which run no cleanup) are dropped when seen.
   */
  isOperationRunning?: (workflowId: string, runId: string) => Promise<boolean>;
}

export class SqlConfigStore implements ConfigStore {
  private migrated: Promise<unknown> | undefined;
  constructor(
    readonly engine: Engine,
    private readonly opts: SqlConfigStoreOptions = {},
  ) {}

  get location(): string {
    return this.engine.location;
  }

  /** Whether the database holds a configuration. */
  async exists(): Promise<boolean> {
    return this.read(async (tx) => (await tx.selectFrom('cluster').select('id').executeTakeFirst()) !== undefined);
  }

  /** Replaces the whole configuration (seeding, tests). */
  async initialise(doc: ClusterConfig): Promise<void> {
    const cfg = parseConfig(doc);
    await this.write((tx) => replaceAll(tx, cfg));
  }

  /** Stores `doc` if the database holds no configuration yet; returns whether it did. */
  async initialiseIfEmpty(doc: ClusterConfig): Promise<boolean> {
    const cfg = parseConfig(doc);
    return this.write(async (tx) => {
      if (await tx.selectFrom('cluster').select('id').executeTakeFirst()) return false;
      await replaceAll(tx, cfg);
      return true;
    });
  }

  /**
   * `config import`: replaces the configuration with `doc` unless reservations or evacuation slots of
   * running operations exist (ConfigError `conflict`, nothing changed). The previous configuration is
   * first written to `backupDir` (a JSON file, mode 0600). The serial goes on from the previous one.
   */
  async importConfig(doc: unknown, backupDir: string): Promise<{ backup: string | null; config: ClusterConfig }> {
    const cfg = parseConfig(doc);
    // A transaction retried (PostgreSQL) writes a backup per attempt: only the committed one stays.
    const written: string[] = [];
    const keep = (backup: string | null) => written.filter((b) => b !== backup).forEach((b) => rmSync(b, { force: true }));
    try {
      const r = await this.write(async (tx) => {
        const held = [
          ...(await tx.selectFrom('reservations').select('op_id as id').execute()).map((r) => `reservation ${r.id}`),
          ...(await tx.selectFrom('leases').select('id').execute()).map((r) => `evacuation slot ${r.id}`),
        ];
        if (held.length) {
          throw new ConfigError(`operations are running (${held.sort().join(', ')}): wait for them or abort them first`, 'conflict');
        }
        const old = await readAll(tx);
        if (!old) {
          await replaceAll(tx, cfg);
          return { backup: null, config: cfg };
        }
        const backup = join(backupDir, `config-backup-${new Date().toISOString().replace(/[:.]/g, '-')}-${written.length}.json`);
        writeFileSync(backup, `${JSON.stringify(old, null, 1)}\n`, { mode: 0o600, flag: 'wx' });
        written.push(backup);
        const next = { ...cfg, serial: Math.max(cfg.serial, old.serial + 1) };
        await replaceAll(tx, next);
        return { backup, config: next };
      });
      keep(r.backup);
      return r;
    } catch (e) {
      keep(null); // nothing replaced: no backup of it
      throw e;
    }
  }

  /** Read-modify-write of the whole configuration in one transaction (tests and tools). */
  async update<R>(fn: (cfg: ClusterConfig) => R): Promise<R> {
    return this.write(async (tx) => {
      const cfg = await readAll(tx);
      if (!cfg) throw this.noConfig();
      const r = fn(cfg);
      await replaceAll(tx, parseConfig(cfg));
      return r;
    });
  }

  async config(): Promise<ClusterConfig> {
    const cfg = await this.read(readAll);
    if (!cfg) throw this.noConfig();
    return cfg;
  }

  /** The configuration, read synchronously (SQLite only: tests and the simulator's tools). */
  readSync(): ClusterConfig {
    if (!this.engine.readSync) throw new Error(`synchronous reads need the SQLite store, not ${this.location}`);
    const db = this.engine.db;
    const rows = this.engine.readSync((all): ConfigRows | null => {
      const [cluster] = all(db.selectFrom('cluster').selectAll());
      if (!cluster) return null;
      return {
        cluster,
        nodes: all(db.selectFrom('nodes').selectAll()),
        instances: all(db.selectFrom('instances').selectAll()),
        disks: all(db.selectFrom('disks').selectAll()),
        reservations: all(db.selectFrom('reservations').selectAll()),
        leases: all(db.selectFrom('leases').selectAll()),
      };
    });
    if (!rows) throw this.noConfig();
    return ClusterConfigSchema.parse(configFromRows(rows));
  }

  async snapshot(scope: SnapshotScope = {}): Promise<ClusterSnapshot> {
    return this.read(async (tx) => {
      const c = await tx.selectFrom('cluster').selectAll().where('id', '=', CLUSTER_ROW_ID).executeTakeFirst();
      if (!c) throw this.noConfig();
      const { nodes: nodeNames, instances: names, primaryOn } = scope;
      const nodes = await tx
        .selectFrom('nodes')
        .selectAll()
        .$if(nodeNames !== undefined, (q) => q.where('name', 'in', nonEmpty(nodeNames)))
        .execute();
      const instances = await tx
        .selectFrom('instances')
        .selectAll()
        .$if(names !== undefined, (q) => q.where('name', 'in', nonEmpty(names)))
        .$if(primaryOn !== undefined, (q) => q.where('primary_node', '=', primaryOn!))
        .execute();
      const scoped = names !== undefined || primaryOn !== undefined;
      const disks = await tx
        .selectFrom('disks')
        .selectAll()
        .$if(scoped, (q) => q.where('instance', 'in', nonEmpty(instances.map((i) => i.name))))
        .execute();
      const disksOf = groupDisks(disks);
      return {
        version: 1,
        serial: c.serial,
        cluster: ClusterSchema.parse(JSON.parse(c.data)),
        nodes: Object.fromEntries(sortByName(nodes).map((n) => [n.name, NodeSchema.parse(nodeFromRow(n))])),
        instances: Object.fromEntries(
          sortByName(instances).map((i) => [i.name, InstanceSchema.parse(instanceFromRows(i, disksOf.get(i.name) ?? []))]),
        ),
      };
    });
  }

  async reservedMemory(exceptOpId?: string): Promise<Record<string, number>> {
    const rows = await this.read((tx) => tx.selectFrom('reservations').selectAll().execute());
    const out: Record<string, number> = {};
    for (const r of rows) if (r.op_id !== exceptOpId) out[r.node] = (out[r.node] ?? 0) + r.memory;
    return out;
  }

  async reserveMemory(req: ReserveMemoryRequest): Promise<{ free: number; reserved: number }> {
    // Whether the holders of the node's other reservations still run is asked only when they stand in
    // the way (less free than wanted): with many operations at once, asking about every holder on
    // every reservation would cost a server call per running operation, per operation.
    const onNode = await this.read((tx) => readReservations(tx, [req.node]));
    delete onNode[req.opId];
    const held = Object.values(onNode).reduce((sum, r) => sum + r.memory, 0);
    const dead = req.wanted > req.reportedFree - held ? await this.deadHolders(onNode, req.opId) : [];
    return this.write(async (tx) => {
      if (dead.length) await tx.deleteFrom('reservations').where('op_id', 'in', dead).execute();
      const others = await tx
        .selectFrom('reservations')
        .select('memory')
        .where('node', '=', req.node)
        .where('op_id', '!=', req.opId)
        .execute();
      const free = Math.max(0, req.reportedFree - others.reduce((s, r) => s + r.memory, 0));
      if (req.needed > free) {
        await tx.deleteFrom('reservations').where('op_id', '=', req.opId).execute();
        return { free, reserved: 0 };
      }
      const reserved = Math.min(req.wanted, free);
      const row = { node: req.node, memory: reserved, instance: req.instance, workflow_id: req.workflowId, run_id: req.runId };
      await tx
        .insertInto('reservations')
        .values({ op_id: req.opId, ...row })
        .onConflict((oc) => oc.column('op_id').doUpdateSet(row))
        .execute();
      return { free, reserved };
    });
  }

  /** Drops the reservations (on `nodes`, or all) of operations that no longer run (e.g. terminated workflows). */
  async pruneReservations(nodes?: string[]): Promise<string[]> {
    const dead = await this.deadHolders(await this.read((tx) => readReservations(tx, nodes)), '');
    if (dead.length) await this.write((tx) => tx.deleteFrom('reservations').where('op_id', 'in', dead).execute());
    return dead;
  }

  async reservations(): Promise<Record<string, Reservation>> {
    return this.read((tx) => readReservations(tx));
  }

  async releaseReservation(opId: string): Promise<void> {
    await this.write((tx) => tx.deleteFrom('reservations').where('op_id', '=', opId).execute());
  }

  async acquireSlot(req: SlotRequest): Promise<SlotAnswer> {
    const held = await this.read((tx) => tx.selectFrom('leases').selectAll().execute());
    const leases = Object.fromEntries(held.map((l) => [l.id, leaseFromRow(l)]));
    const dead = await this.deadHolders(leases, req.id, `${req.workflowId}@${req.runId}`);
    return this.write(async (tx): Promise<SlotAnswer> => {
      if (dead.length) await tx.deleteFrom('leases').where('id', 'in', dead).execute();
      const others = await tx.selectFrom('leases').selectAll().execute();
      if (others.some((l) => l.id === req.id)) return { granted: true };
      const { maxConcurrent, maxOutgoing, maxIncoming } = req.limits;
      if (others.length >= maxConcurrent) {
        return {
          granted: false,
          limit: 'cluster',
          reason: `${others.length} evacuation migrations run in the cluster (at most ${maxConcurrent})`,
        };
      }
      const out = others.filter((l) => l.source === req.source).length;
      if (out >= maxOutgoing) {
        return { granted: false, limit: 'source', reason: `${out} leave ${req.source} (at most ${maxOutgoing})` };
      }
      const inc = req.target === null ? 0 : others.filter((l) => l.target === req.target).length;
      if (inc >= maxIncoming) {
        return { granted: false, limit: 'target', reason: `${inc} arrive on ${req.target} (at most ${maxIncoming})` };
      }
      await tx
        .insertInto('leases')
        .values({
          id: req.id,
          workflow_id: req.workflowId,
          run_id: req.runId,
          instance: req.instance,
          source: req.source,
          target: req.target,
        })
        .execute();
      return { granted: true };
    });
  }

  async releaseSlot(id: string): Promise<void> {
    await this.write((tx) => tx.deleteFrom('leases').where('id', '=', id).execute());
  }

  async setInstancePrimary(instance: string, expected: string, newPrimary: string): Promise<Instance> {
    return this.write(async (tx) => {
      const inst = await loadInstance(tx, instance);
      if (inst.primaryNode === newPrimary) return inst;
      if (inst.primaryNode !== expected) {
        throw new ConfigError(
          `instance ${instance}: primary is ${inst.primaryNode}, expected ${expected} (configuration changed underneath)`,
          'conflict',
        );
      }
      if (!(await tx.selectFrom('nodes').select('name').where('name', '=', newPrimary).executeTakeFirst())) {
        throw new ConfigError(`Node '${newPrimary}' not known`, 'not-found');
      }
      const changed = InstanceSchema.safeParse({ ...inst, primaryNode: newPrimary });
      if (!changed.success) throw new ConfigError(`instance ${instance} on ${newPrimary}: ${changed.error.message}`, 'invalid');
      const r = await tx
        .updateTable('instances')
        .set({ primary_node: newPrimary })
        .where('name', '=', instance)
        .where('primary_node', '=', expected)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw new ConfigError(`instance ${instance}: primary changed underneath`, 'conflict');
      await bumpSerial(tx);
      return changed.data;
    });
  }

  async setDisksActive(instance: string, active: boolean): Promise<Instance> {
    return this.write(async (tx) => {
      const inst = await loadInstance(tx, instance);
      if (inst.disksActive === active) return inst;
      await tx.updateTable('instances').set({ disks_active: +active }).where('name', '=', instance).execute();
      await bumpSerial(tx);
      return { ...inst, disksActive: active };
    });
  }

  async modifyNode(node: string, change: Partial<Pick<Node, 'offline' | 'drained'>>): Promise<Node> {
    return this.write(async (tx) => {
      const row = await tx.selectFrom('nodes').selectAll().where('name', '=', node).executeTakeFirst();
      if (!row) throw new ConfigError(`Node '${node}' not known`, 'not-found');
      if (change.offline) {
        const c = await tx.selectFrom('cluster').select('data').where('id', '=', CLUSTER_ROW_ID).executeTakeFirstOrThrow();
        if (ClusterSchema.parse(JSON.parse(c.data)).masterNode === node) {
          throw new ConfigError(`The master node ${node} cannot be marked offline`, 'invalid');
        }
      }
      const n = { ...NodeSchema.parse(nodeFromRow(row)), ...change };
      await tx.updateTable('nodes').set({ offline: +n.offline, drained: +n.drained }).where('name', '=', node).execute();
      await bumpSerial(tx);
      return n;
    });
  }

  async modifyInstance(instance: string, change: Partial<Pick<Instance, 'adminState'>>): Promise<Instance> {
    return this.write(async (tx) => {
      const inst = { ...(await loadInstance(tx, instance)), ...change };
      await tx.updateTable('instances').set({ admin_state: inst.adminState }).where('name', '=', instance).execute();
      await bumpSerial(tx);
      return inst;
    });
  }

  async close(): Promise<void> {
    await this.engine.close();
  }

  /** The entries whose holding run no longer runs (kept when that cannot be told). */
  private deadHolders(entries: Record<string, Holder>, exceptId: string, alive?: string): Promise<string[]> {
    return deadHolders(this.opts.isOperationRunning, entries, exceptId, alive);
  }

  private noConfig(): ConfigError {
    return new ConfigError(`no cluster configuration in ${this.location}`, 'not-found');
  }

  /** Applies the schema migrations once per store (and again after a failure). */
  private async ready(): Promise<void> {
    this.migrated ??= this.engine.exclusive(migrate);
    try {
      await this.migrated;
    } catch (e) {
      this.migrated = undefined;
      throw e;
    }
  }

  private async write<R>(fn: (tx: Tx) => Promise<R>): Promise<R> {
    await this.ready();
    return this.engine.write(fn);
  }

  private async read<R>(fn: (tx: Tx) => Promise<R>): Promise<R> {
    await this.ready();
    return this.engine.read(fn);
  }
}
