/**
 * The JSON document store (atomic replace, lock-serialised read-modify-write within and across
 * processes, stale locks) and the cluster configuration store built on it (memory reservations,
 * compare-and-set of the primary node, node flags).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import type { ReserveMemoryRequest } from '../../domain/ports.js';
import { defaultClusterConfig } from '../../adapters/sim/cluster.js';
import { ConfigError, FileConfigStore, type FileConfigStoreOptions } from '../../adapters/store/config-store.js';
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

// ---- FileConfigStore ----------------------------------------------------------------------------

async function configStore(opts: FileConfigStoreOptions = {}): Promise<FileConfigStore> {
  const store = FileConfigStore.forHome(tempDir(), opts);
  await store.initialise(defaultClusterConfig('storetest'));
  return store;
}

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

describe('FileConfigStore memory reservations', () => {
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
    const home = tempDir();
    const plain = FileConfigStore.forHome(home);
    await plain.initialise(defaultClusterConfig('storetest'));
    await plain.reserveMemory(req('dead', { node: 'node2', wanted: 1024 }));
    await plain.reserveMemory(req('unknown', { node: 'node2', wanted: 1024 }));
    await plain.reserveMemory(req('alive', { node: 'node3' }));

    const asked: string[] = [];
    const store = FileConfigStore.forHome(home, {
      isOperationRunning: async (workflowId) => {
        asked.push(workflowId);
        if (workflowId === 'wf-unknown') throw new Error('server unreachable');
        return workflowId !== 'wf-dead';
      },
    });
    // free 3000 minus only the undecidable 1024 on node2
    expect(await store.reserveMemory(req('new'))).toEqual({ free: 1976, reserved: 1976 });
    expect(Object.keys((await store.config()).reservations).sort()).toEqual(['alive', 'new', 'unknown']);
    expect(asked.sort()).toEqual(['wf-alive', 'wf-dead', 'wf-unknown']);
    expect(await store.reservedMemory()).toEqual({ node2: 1024 + 1976, node3: 2048 });
  });
});

describe('FileConfigStore configuration changes', () => {
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
