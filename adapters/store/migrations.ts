/**
 * The schema of the configuration database as versioned migrations, the same for both engines
 * (Kysely's schema builder emits each engine's DDL). `schema_version` holds how many have been
 * applied; every process that opens the database applies the missing ones, serialised by the engine's
 * exclusive transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock). A migration is never
 * changed once released: a new schema is a new migration appended to the list.
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

// The schema builder is untyped (the tables it creates are what the typed Database describes).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Migration = (db: Kysely<any>) => Promise<void>;

export const MIGRATIONS: readonly Migration[] = [
  // 1: cluster, nodes, instances, disks, reservations, leases.
  async (db) => {
    await db.schema
      .createTable('cluster')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('serial', 'integer', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('nodes')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('uuid', 'text', (c) => c.notNull())
      .addColumn('offline', 'integer', (c) => c.notNull())
      .addColumn('drained', 'integer', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('instances')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('uuid', 'text', (c) => c.notNull())
      .addColumn('primary_node', 'text', (c) => c.notNull())
      .addColumn('admin_state', 'text', (c) => c.notNull())
      .addColumn('disks_active', 'integer', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('disks')
      .addColumn('instance', 'text', (c) => c.notNull())
      .addColumn('idx', 'integer', (c) => c.notNull())
      .addColumn('uuid', 'text', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('disks_pk', ['instance', 'idx'])
      .execute();
    await db.schema
      .createTable('reservations')
      .addColumn('op_id', 'text', (c) => c.primaryKey())
      .addColumn('node', 'text', (c) => c.notNull())
      .addColumn('memory', 'integer', (c) => c.notNull())
      .addColumn('instance', 'text', (c) => c.notNull())
      .addColumn('workflow_id', 'text', (c) => c.notNull())
      .addColumn('run_id', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('reservations_node').on('reservations').column('node').execute();
    await db.schema
      .createTable('leases')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workflow_id', 'text', (c) => c.notNull())
      .addColumn('run_id', 'text', (c) => c.notNull())
      .addColumn('instance', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('target', 'text')
      .execute();
  },
];

/** Applies the migrations `db` lacks (run inside the engine's exclusive transaction). */
export async function migrate(db: Kysely<Database>): Promise<number> {
  await db.schema
    .createTable('schema_version')
    .ifNotExists()
    .addColumn('version', 'integer', (c) => c.notNull())
    .execute();
  const row = await db.selectFrom('schema_version').select('version').executeTakeFirst();
  const from = row?.version ?? 0;
  if (from > MIGRATIONS.length) {
    throw new Error(`the configuration database has schema version ${from}; this program knows versions up to ${MIGRATIONS.length}`);
  }
  for (const m of MIGRATIONS.slice(from)) await m(db);
  if (!row) await db.insertInto('schema_version').values({ version: MIGRATIONS.length }).execute();
  else if (from !== MIGRATIONS.length) await db.updateTable('schema_version').set({ version: MIGRATIONS.length }).execute();
  return MIGRATIONS.length;
}
