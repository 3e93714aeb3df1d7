/**
 * The configuration database of one `bench:scale` run: the embedded SQLite file under the run's home,
 * or a fresh database on a throw-away PostgreSQL server (Debian's package, started in a temporary
 * directory on a loopback port, as the tests do). `env` is what the orchestrator process needs to
 * open the same store.
 */
import { DATABASE_URL_ENV, openConfigStore, openSqliteStore } from '../adapters/store/open.js';
import type { SqlConfigStore } from '../adapters/store/sql-store.js';
import { startPostgres } from '../test/helpers/postgres.js';

export type BenchEngine = 'sqlite' | 'postgres';

export interface BenchStore {
  store: SqlConfigStore;
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function openBenchStore(engine: BenchEngine, home: string): Promise<BenchStore> {
  if (engine === 'sqlite') {
    const store = openSqliteStore(home);
    return { store, env: {}, close: () => store.close() };
  }
  if (engine !== 'postgres') throw new Error(`unknown engine ${String(engine)} (sqlite or postgres)`);
  const server = await startPostgres();
  const url = await server.createDatabase();
  const store = openConfigStore(home, {}, { [DATABASE_URL_ENV]: url });
  return {
    store,
    env: { [DATABASE_URL_ENV]: url },
    async close() {
      await store.close();
      await server.stop();
    },
  };
}
