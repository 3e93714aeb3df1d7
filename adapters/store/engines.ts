/**
 * The two engines of the configuration database behind one Kysely query layer:
 * - SQLite (better-sqlite3), the embedded default: one file, created with mode 0600, in WAL mode with
 *   a busy timeout. Several processes open it; every write transaction starts with BEGIN IMMEDIATE
 *   (it takes the write lock first, waiting up to the busy timeout, so it never fails half-way when a
 *   deferred transaction would have to upgrade its lock).
 * - PostgreSQL (pg): write transactions are SERIALIZABLE and retried on a serialization failure.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, sql, SqliteDialect, type Compilable } from 'kysely';
import pg from 'pg';
import { StoreBusyError } from '../../domain/ports.js';
import type { Database } from './schema.js';

export type Tx = Kysely<Database>;

export interface Engine {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the database is (a file path, or the URL without its password). */
  readonly location: string;
  readonly db: Kysely<Database>;
  /** Runs `fn` in a write transaction (retried as a whole on a serialization failure). */
  write<R>(fn: (tx: Tx) => Promise<R>): Promise<R>;
  /** Runs `fn` in a read-only transaction that sees one consistent state. */
  read<R>(fn: (tx: Tx) => Promise<R>): Promise<R>;
  /** Runs `fn` in a transaction that excludes every other `exclusive` one (schema migrations). */
  exclusive<R>(fn: (tx: Tx) => Promise<R>): Promise<R>;
  /** Synchronous reads (SQLite only; a connection of their own). */
  readSync?<R>(fn: (all: <T>(q: Compilable<T>) => T[]) => R): R;
  close(): Promise<void>;
}

/** How long a SQLite transaction waits for another process's write lock. */
export const SQLITE_BUSY_TIMEOUT_MS = 30_000;

/**
 * The SQLite engines open in this process, by file: every store of one file in a process shares one
 * connection (Kysely serialises its transactions), since two connections of one process would wait
 * for each other's write lock with the event loop blocked (better-sqlite3 waits synchronously).
 */
const sqliteEngines = new Map<string, { engine: Engine; refs: number }>();

/** The SQLite engine of the file `path` (created 0600 if missing). */
export function sqliteEngine(path: string): Engine {
  const key = resolve(path);
  let shared = sqliteEngines.get(key);
  if (!shared) {
    shared = { engine: openSqlite(key), refs: 0 };
    sqliteEngines.set(key, shared);
  }
  shared.refs++;
  const s = shared;
  let closed = false;
  return {
    ...s.engine,
    async close() {
      if (closed) return;
      closed = true;
      if (--s.refs > 0) return;
      sqliteEngines.delete(key);
      await s.engine.close();
    },
  };
}

function openSqlite(path: string): Engine {
  mkdirSync(dirname(path), { recursive: true });
  // Created here (not by SQLite) so that it is 0600 from the start; its -wal and -shm files follow its mode.
  closeSync(openSync(path, 'a', 0o600));
  const open = (pragmas: boolean) => {
    const conn = new BetterSqlite3(path, { timeout: SQLITE_BUSY_TIMEOUT_MS });
    if (pragmas) {
      conn.pragma('journal_mode = WAL');
      // Durable across power loss in WAL mode (NORMAL is only crash-safe).
      conn.pragma('synchronous = FULL');
    }
    return conn;
  };
  const conn = open(true);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: conn }) });
  let reader: BetterSqlite3.Database | undefined;
  const txn = async <R>(begin: 'begin' | 'begin immediate', fn: (tx: Tx) => Promise<R>): Promise<R> =>
    busyAsStoreBusy(() =>
      // Kysely hands out SQLite's single connection to one caller at a time.
      db.connection().execute(async (c) => {
        await sql.raw(begin).execute(c);
        try {
          const r = await fn(c);
          await sql`commit`.execute(c);
          return r;
        } catch (e) {
          await sql`rollback`.execute(c).catch(() => undefined);
          throw e;
        }
      }),
    );
  return {
    kind: 'sqlite',
    location: path,
    db,
    write: (fn) => txn('begin immediate', fn),
    read: (fn) => txn('begin', fn),
    exclusive: (fn) => txn('begin immediate', fn),
    readSync(fn) {
      reader ??= open(false);
      const r = reader;
      const all = <T>(q: Compilable<T>): T[] => {
        const c = q.compile();
        return r.prepare(c.sql).all(...(c.parameters as unknown[])) as T[];
      };
      return r.transaction(() => fn(all))();
    },
    async close() {
      reader?.close();
      await db.destroy();
    },
  };
}

/** PostgreSQL's serialization failure and deadlock: the transaction is retried. */
const RETRY_CODES = new Set(['40001', '40P01']);
const PG_RETRIES = 50;
/** The advisory lock key of schema migrations. */
const MIGRATION_LOCK = 0x67746d63;

export function postgresEngine(url: string): Engine {
  const pool = new pg.Pool({ connectionString: url, max: 4, allowExitOnIdle: true });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    kind: 'postgres',
    location: redactUrl(url),
    db,
    async write(fn) {
      for (let attempt = 0; ; attempt++) {
        try {
          return await db.transaction().setIsolationLevel('serializable').execute(fn);
        } catch (e) {
          if (!RETRY_CODES.has((e as { code?: string }).code ?? '')) throw e;
          if (attempt >= PG_RETRIES) throw new StoreBusyError(`configuration write retried ${attempt} times: ${(e as Error).message}`);
          await sleep(Math.min(2 + attempt, 50) * (0.5 + Math.random()));
        }
      }
    },
    read: (fn) => db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(fn),
    exclusive: (fn) =>
      db.transaction().execute(async (tx) => {
        await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`.execute(tx);
        return fn(tx);
      }),
    close: () => db.destroy(),
  };
}

/** SQLite's "database is locked" after the busy timeout: the store is momentarily unable to answer. */
async function busyAsStoreBusy<R>(fn: () => Promise<R>): Promise<R> {
  try {
    return await fn();
  } catch (e) {
    if (String((e as { code?: unknown }).code).startsWith('SQLITE_BUSY')) {
      throw new StoreBusyError(`the configuration database is locked by another process: ${(e as Error).message}`);
    }
    throw e;
  }
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}
