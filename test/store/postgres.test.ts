/**
 * The configuration store on PostgreSQL: the behaviour shared with SQLite (test/helpers/store-cases.ts)
 * against a real server (test/helpers/postgres.ts), a database per test; the schema migrated by
 * several processes at once; and the store chosen by GANETI_TEMPORAL_DATABASE_URL.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { defaultClusterConfig } from '../../adapters/sim/cluster.js';
import { postgresEngine } from '../../adapters/store/engines.js';
import { openConfigStore } from '../../adapters/store/open.js';
import { SqlConfigStore } from '../../adapters/store/sql-store.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { configStoreCases, leaseCases, type StoreEngineCase } from '../helpers/store-cases.js';

let server: PostgresServer | undefined;
beforeAll(async () => {
  server = await startPostgres();
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

const POSTGRES: StoreEngineCase = {
  name: 'PostgreSQL',
  fresh: () => server!.createDatabase(),
  open: (url, opts) => new SqlConfigStore(postgresEngine(url), opts),
};

configStoreCases(POSTGRES);
leaseCases(POSTGRES);

describe('PostgreSQL configuration store', () => {
  test('several stores opening a new database at once migrate its schema once', async () => {
    const url = await server!.createDatabase();
    const stores = Array.from({ length: 5 }, () => new SqlConfigStore(postgresEngine(url)));
    try {
      expect(await Promise.all(stores.map((s) => s.exists()))).toEqual([false, false, false, false, false]);
      await stores[0]!.initialise(defaultClusterConfig('pg'));
      expect((await stores[4]!.config()).cluster.name).toBe('pg');
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  test('GANETI_TEMPORAL_DATABASE_URL selects PostgreSQL; anything but a postgres:// URL is refused', async () => {
    const url = await server!.createDatabase();
    const s = openConfigStore('/nonexistent', {}, { GANETI_TEMPORAL_DATABASE_URL: url });
    try {
      expect(s.engine.kind).toBe('postgres');
      expect(s.location).not.toContain(':test@');
      await s.initialise(defaultClusterConfig('pg'));
      expect((await s.snapshot({ instances: ['web1'] })).instances.web1!.primaryNode).toBe('node1');
    } finally {
      await s.close();
    }
    expect(() => openConfigStore('/nonexistent', {}, { GANETI_TEMPORAL_DATABASE_URL: 'mysql://x' })).toThrow(/postgres:\/\//);
  });
});
