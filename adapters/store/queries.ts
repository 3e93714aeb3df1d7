/**
 * The queries and checks the configuration store (sql-store.ts) composes its transactions of: the
 * whole configuration read and replaced, the reservations read alone, an instance loaded, the serial
 * bumped, and which holders of reservations and leases no longer run.
 */
import { ConfigError } from '../../domain/ports.js';
import { ClusterConfigSchema, InstanceSchema, type ClusterConfig, type Instance, type Reservation } from '../../domain/types.js';
import type { Tx } from './engines.js';
import { CLUSTER_ROW_ID, configFromRows, configToRows, instanceFromRows, reservationFromRow, type ConfigRows } from './schema.js';

/** Rows per INSERT statement (bounded by SQLite's limit on bound parameters). */
const CHUNK = 100;

/** Who holds a reservation or lease: a workflow run. */
export interface Holder {
  workflowId: string;
  runId: string;
}

/** `IN ()` is not SQL: an empty list becomes one that matches no name. */
export function nonEmpty(names: string[] | undefined): string[] {
  return names?.length ? names : [''];
}

export function sortByName<T extends { name: string }>(rows: T[]): T[] {
  return rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export async function readAll(tx: Tx): Promise<ClusterConfig | null> {
  const cluster = await tx.selectFrom('cluster').selectAll().where('id', '=', CLUSTER_ROW_ID).executeTakeFirst();
  if (!cluster) return null;
  const rows: ConfigRows = {
    cluster,
    nodes: sortByName(await tx.selectFrom('nodes').selectAll().execute()),
    instances: sortByName(await tx.selectFrom('instances').selectAll().execute()),
    disks: await tx.selectFrom('disks').selectAll().execute(),
    reservations: await reservationRows(tx),
    leases: await tx.selectFrom('leases').selectAll().orderBy('id').execute(),
  };
  return ClusterConfigSchema.parse(configFromRows(rows));
}

function reservationRows(tx: Tx, nodes?: string[]) {
  return tx
    .selectFrom('reservations')
    .selectAll()
    .$if(nodes !== undefined, (q) => q.where('node', 'in', nonEmpty(nodes)))
    .orderBy('op_id')
    .execute();
}

/** The memory reservations (on `nodes`, or all) by operation id, as the configuration's `reservations` holds them. */
export async function readReservations(tx: Tx, nodes?: string[]): Promise<Record<string, Reservation>> {
  return Object.fromEntries((await reservationRows(tx, nodes)).map((r) => [r.op_id, reservationFromRow(r)]));
}

export async function replaceAll(tx: Tx, cfg: ClusterConfig): Promise<void> {
  const rows = configToRows(cfg);
  for (const t of ['disks', 'instances', 'nodes', 'reservations', 'leases', 'cluster'] as const) await tx.deleteFrom(t).execute();
  await tx.insertInto('cluster').values(rows.cluster).execute();
  for (let i = 0; i < rows.nodes.length; i += CHUNK)
    await tx
      .insertInto('nodes')
      .values(rows.nodes.slice(i, i + CHUNK))
      .execute();
  for (let i = 0; i < rows.instances.length; i += CHUNK) {
    await tx
      .insertInto('instances')
      .values(rows.instances.slice(i, i + CHUNK))
      .execute();
  }
  for (let i = 0; i < rows.disks.length; i += CHUNK)
    await tx
      .insertInto('disks')
      .values(rows.disks.slice(i, i + CHUNK))
      .execute();
  for (let i = 0; i < rows.reservations.length; i += CHUNK) {
    await tx
      .insertInto('reservations')
      .values(rows.reservations.slice(i, i + CHUNK))
      .execute();
  }
  for (let i = 0; i < rows.leases.length; i += CHUNK)
    await tx
      .insertInto('leases')
      .values(rows.leases.slice(i, i + CHUNK))
      .execute();
}

export async function loadInstance(tx: Tx, name: string): Promise<Instance> {
  const row = await tx.selectFrom('instances').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row) throw new ConfigError(`Instance '${name}' not known`, 'not-found');
  const disks = await tx.selectFrom('disks').selectAll().where('instance', '=', name).execute();
  return InstanceSchema.parse(instanceFromRows(row, disks));
}

export async function bumpSerial(tx: Tx): Promise<void> {
  await tx
    .updateTable('cluster')
    .set((eb) => ({ serial: eb('serial', '+', 1) }))
    .where('id', '=', CLUSTER_ROW_ID)
    .execute();
}

/** The entries whose holding run no longer runs (kept when that cannot be told). */
export async function deadHolders(
  check: ((workflowId: string, runId: string) => Promise<boolean>) | undefined,
  entries: Record<string, Holder>,
  exceptId: string,
  /** A run known to be running (the requester). */
  alive?: string,
): Promise<string[]> {
  if (!check) return [];
  const dead: string[] = [];
  const seen = new Map<string, boolean>(alive ? [[alive, true]] : []);
  for (const [id, r] of Object.entries(entries)) {
    if (id === exceptId) continue;
    const key = `${r.workflowId}@${r.runId}`;
    try {
      // One node operation holds several leases: ask about each run once.
      if (!seen.has(key)) seen.set(key, await check(r.workflowId, r.runId));
      if (!seen.get(key)) dead.push(id);
    } catch {
      // cannot tell: keep the entry (conservative)
    }
  }
  return dead;
}
