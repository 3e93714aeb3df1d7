/**
 * The JSON document store (atomic replace, lock-serialised read-modify-write within and across
 * processes, stale locks; the simulator's hardware uses it) and the cluster configuration store on
 * its embedded SQLite engine: the behaviour shared with PostgreSQL (test/helpers/store-cases.ts,
 * test/store/postgres.test.ts), plus the file (mode 0600), writers in several processes, and the
 * import of the JSON store's config.json on first start.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { configStoreCases, SQLITE } from '../helpers/store-cases.js';
import { defaultClusterConfig } from '../../adapters/sim/cluster.js';
import { configPath } from '../../adapters/store/config-store.js';
import { databasePath, importJsonOnFirstStart, openSqliteStore } from '../../adapters/store/open.js';
import { JsonFileStore, LockTimeoutError, type JsonFileStoreOptions } from '../../adapters/common/json-file.js';

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const JSON_FILE_TS = fileURLToPath(new URL('../../adapters/common/json-file.ts', import.meta.url));

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'store-test-'));
  dirs.push(d);
  return d;
}

interface Counter {
  count: number;
  by: Record<string, number>;
}

function counterStore(path: string, opts: Partial<JsonFileStoreOptions<Counter>> = {}): JsonFileStore<Counter> {
  return new JsonFileStore<Counter>(path, { parse: (raw) => raw as Counter, ...opts });
}

/** Runs `code` (an ES module) in a child Node process with tsx loaded; resolves with its stdout. */
function runChild(code: string, withTsx = true): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = [...(withTsx ? ['--import', 'tsx'] : []), '--input-type=module', '-e', code];
    const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

/** A pid that certainly belonged to a process which has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  expect(r.status).toBe(0);
  return r.pid!;
}

// ---- JsonFileStore ------------------------------------------------------------------------------

describe('JsonFileStore', () => {
  test('write replaces the whole document by renaming a new file over the old one, leaving no temporary or lock file', async () => {
    const dir = tempDir();
    const path = join(dir, 'doc.json');
    const store = new JsonFileStore<Record<string, unknown>>(path, { parse: (raw) => raw as Record<string, unknown> });
    await store.write({ a: 1, b: [1, 2, 3] });
    const ino1 = statSync(path).ino;
    await store.write({ c: 'x' });
    expect(store.read()).toEqual({ c: 'x' });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ c: 'x' });
    expect(statSync(path).ino).not.toBe(ino1); // a new inode: replaced, not rewritten in place
    expect(readdirSync(dir)).toEqual(['doc.json']);
  });

  test('a reader in another process never sees a partially written document', async () => {
    const dir = tempDir();
    const path = join(dir, 'doc.json');
    const big = (v: number) => ({ version: v, filler: Array.from({ length: 20_000 }, (_, i) => `${v}-${i}`) });
    const store = new JsonFileStore<ReturnType<typeof big>>(path, { parse: (raw) => raw as ReturnType<typeof big> });
    await store.write(big(0));
    const reader = runChild(
      `import { readFileSync } from 'node:fs';
       const seen = new Set(); let reads = 0, broken = 0; const end = Date.now() + 700;
       while (Date.now() < end) {
         try { const d = JSON.parse(readFileSync(${JSON.stringify(path)}, 'utf8')); seen.add(d.version); reads++; }
         catch { broken++; }
       }
       console.log(JSON.stringify({ reads, broken, versions: seen.size }));`,
      false,
    );
    let done = false;
    void reader.finally(() => (done = true)).catch(() => undefined);
    let v = 0;
    while (!done) {
      await store.write(big(++v));
      await new Promise((r) => setImmediate(r));
    }
    const r = JSON.parse(await reader) as { reads: number; broken: number; versions: number };
    expect(v).toBeGreaterThan(5);
    expect(r.reads).toBeGreaterThan(5);
    expect(r.versions).toBeGreaterThan(1); // the reads really interleaved with the writes
    expect(r.broken).toBe(0);
  });

  test('update does not write when fn throws, and releases the lock', async () => {
    const dir = tempDir();
    const path = join(dir, 'c.json');
    const store = counterStore(path);
    await store.write({ count: 7, by: {} });
    const before = { text: readFileSync(path, 'utf8'), ino: statSync(path).ino };
    await expect(
      store.update((d) => {
        d.count = 1000; // mutated in place, then abandoned
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(readFileSync(path, 'utf8')).toBe(before.text);
    expect(statSync(path).ino).toBe(before.ino);
    expect(store.read().count).toBe(7);
    expect(existsSync(`${path}.lock`)).toBe(false);
    expect(await store.update((d) => ++d.count)).toBe(8);
  });

  test('50 concurrent updates from one process lose nothing and each sees a distinct value', async () => {
    const dir = tempDir();
    const store = counterStore(join(dir, 'c.json'));
    await store.write({ count: 0, by: {} });
    const seen = await Promise.all(Array.from({ length: 50 }, () => store.update((d) => ++d.count)));
    expect(store.read().count).toBe(50);
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  test('concurrent updates from several processes lose nothing', async () => {
    const dir = tempDir();
    const path = join(dir, 'c.json');
    const store = counterStore(path);
    await store.write({ count: 0, by: {} });
    const N = 40;
    const child = (id: string) =>
      runChild(
        `import { JsonFileStore } from ${JSON.stringify(JSON_FILE_TS)};
         const s = new JsonFileStore(${JSON.stringify(path)}, { parse: (r) => r });
         for (let i = 0; i < ${N}; i++) await s.update((d) => { d.count++; d.by[${JSON.stringify(id)}] = (d.by[${JSON.stringify(id)}] ?? 0) + 1; });
         console.log('done');`,
      );
    const parent = (async () => {
      for (let i = 0; i < N; i++) {
        await store.update((d) => {
          d.count++;
          d.by.parent = (d.by.parent ?? 0) + 1;
        });
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const outs = await Promise.all([child('a'), child('b'), child('c'), parent]);
    expect(outs.slice(0, 3).map((o) => (o as string).trim())).toEqual(['done', 'done', 'done']);
    expect(store.read()).toEqual({ count: 4 * N, by: { a: N, b: N, c: N, parent: N } });
    expect(readdirSync(dir)).toEqual(['c.json']);
  }, 30_000);

  test('a lock left behind by a dead process is broken', async () => {
    const dir = tempDir();
    const path = join(dir, 'c.json');
    const store = counterStore(path, { lockTimeoutMs: 3000 });
    await store.write({ count: 1, by: {} });
    writeFileSync(`${path}.lock`, String(deadPid()));
    const t0 = Date.now();
    expect(await store.update((d) => ++d.count)).toBe(2);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(store.read().count).toBe(2);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  test('a lock held by a live process is respected until the lock timeout', async () => {
    const dir = tempDir();
    const path = join(dir, 'c.json');
    const store = counterStore(path, { lockTimeoutMs: 150 });
    await store.write({ count: 1, by: {} });
    writeFileSync(`${path}.lock`, String(process.ppid));
    await expect(store.update((d) => ++d.count)).rejects.toBeInstanceOf(LockTimeoutError);
    expect(store.read().count).toBe(1);
    expect(readFileSync(`${path}.lock`, 'utf8')).toBe(String(process.ppid));
  });

  test('a lock older than staleMs is broken even if its owner still runs', async () => {
    const dir = tempDir();
    const path = join(dir, 'c.json');
    const store = counterStore(path, { lockTimeoutMs: 3000, staleMs: 1000 });
    await store.write({ count: 1, by: {} });
    writeFileSync(`${path}.lock`, String(process.ppid));
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${path}.lock`, old, old);
    expect(await store.update((d) => ++d.count)).toBe(2);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });
});

configStoreCases(SQLITE);

describe('SQLite configuration store', () => {
  test('the database file is created with mode 0600, in WAL mode', async () => {
    const home = tempDir();
    const s = openSqliteStore(home);
    await s.initialise(defaultClusterConfig('storetest'));
    expect(statSync(databasePath(home)).mode & 0o777).toBe(0o600);
    expect(existsSync(`${databasePath(home)}-wal`)).toBe(true);
    expect(statSync(`${databasePath(home)}-wal`).mode & 0o777).toBe(0o600);
    await s.close();
  });

  test('reservations from several processes at once never overcommit', async () => {
    const home = tempDir();
    const s = openSqliteStore(home);
    await s.initialise(defaultClusterConfig('storetest'));
    const child = (n: number) =>
      runChild(`
        import { openSqliteStore } from './adapters/store/open.ts';
        const s = openSqliteStore(${JSON.stringify(home)});
        const out = [];
        for (let i = 0; i < 5; i++) {
          const id = 'p${n}-' + i;
          out.push((await s.reserveMemory({ opId: id, node: 'node2', instance: 'web1', needed: 100, wanted: 150, reportedFree: 4000, workflowId: 'wf-' + id, runId: 'r' })).reserved);
        }
        console.log(JSON.stringify(out));
      `);
    const outs = (await Promise.all([1, 2, 3, 4].map(child))).map((o) => JSON.parse(o) as number[]).flat();
    const total = outs.reduce((a, b) => a + b, 0);
    // 20 requests of 150 MiB against 4000: all fit, each took exactly its share
    expect(total).toBe(3000);
    expect(await s.reservedMemory()).toEqual({ node2: 3000 });
    expect(Object.keys((await s.config()).reservations)).toHaveLength(20);
    await s.close();
  });

  test('a config.json of the JSON store is imported into an empty database on first start and kept renamed', async () => {
    const home = tempDir();
    const cfg = defaultClusterConfig('fromjson');
    cfg.instances.web1!.primaryNode = 'node2';
    writeFileSync(configPath(home), JSON.stringify(cfg, null, 1));
    const s = openSqliteStore(home);
    const backup = await importJsonOnFirstStart(s, home);
    expect(backup).toMatch(/config\.json\.imported-/);
    expect(existsSync(configPath(home))).toBe(false);
    expect(JSON.parse(readFileSync(backup!, 'utf8'))).toEqual(cfg);
    expect(await s.config()).toEqual(cfg);
    expect(s.readSync()).toEqual(cfg);
    // A database that holds a configuration is never overwritten by a JSON file.
    writeFileSync(configPath(home), JSON.stringify(defaultClusterConfig('other')));
    expect(await importJsonOnFirstStart(s, home)).toBeNull();
    expect((await s.config()).cluster.name).toBe('fromjson');
    expect(readdirSync(home).filter((f) => f.startsWith('config.json'))).toHaveLength(2);
    await s.close();
  });

  test('a config.json with fields this version does not know is refused and left in place', async () => {
    const home = tempDir();
    writeFileSync(configPath(home), JSON.stringify({ ...defaultClusterConfig('fromjson'), future: true }));
    const s = openSqliteStore(home);
    await expect(importJsonOnFirstStart(s, home)).rejects.toThrow(/future/);
    expect(existsSync(configPath(home))).toBe(true);
    expect(await s.exists()).toBe(false);
    await s.close();
  });
});
