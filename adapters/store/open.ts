/**
 * Opening the configuration store: PostgreSQL when GANETI_TEMPORAL_DATABASE_URL is a postgres://
 * URL, else the SQLite file `config.db` under GANETI_TEMPORAL_HOME. And the first start of a home
 * that still has the JSON store's `config.json`: imported into an empty database and kept, renamed,
 * as a backup.
 */
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { FileConfigStore } from './config-store.js';
import { postgresEngine, sqliteEngine } from './engines.js';
import { SqlConfigStore, type SqlConfigStoreOptions } from './sql-store.js';

export const DATABASE_URL_ENV = 'GANETI_TEMPORAL_DATABASE_URL';

export const databasePath = (home: string): string => join(home, 'config.db');

/** The store the environment names (see the module comment). */
export function openConfigStore(home: string, opts: SqlConfigStoreOptions = {}, env = process.env): SqlConfigStore {
  const url = env[DATABASE_URL_ENV];
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url)) throw new Error(`${DATABASE_URL_ENV} must be a postgres:// URL`);
    return new SqlConfigStore(postgresEngine(url), opts);
  }
  return openSqliteStore(home, opts);
}

/** The embedded SQLite store of `home`, whatever the environment says (tests, the simulator). */
export function openSqliteStore(home: string, opts: SqlConfigStoreOptions = {}): SqlConfigStore {
  return new SqlConfigStore(sqliteEngine(databasePath(home)), opts);
}

/**
 * If the database is empty and `home` has a `config.json` (the JSON store of earlier versions),
 * imports it and renames it to `config.json.imported-<time>`. Returns the backup's path, or null
 * when there was nothing to import. A file this version cannot store is refused (ConfigError).
 */
export async function importJsonOnFirstStart(store: SqlConfigStore, home: string): Promise<string | null> {
  const json = FileConfigStore.forHome(home);
  if (!json.exists() || (await store.exists())) return null;
  if (!(await store.initialiseIfEmpty(json.read()))) return null;
  const backup = `${json.path}.imported-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  try {
    renameSync(json.path, backup);
  } catch (e) {
    // another process imported it at the same moment and renamed it first
    if (existsSync(json.path)) throw e;
  }
  return backup;
}
