/**
 * The simulated hardware's SQLite database (adapters/sim/hardware.ts): concurrent mutations from
 * several processes lose nothing, a mutation writes back only the rows it changed, the RPC log stays
 * bounded, a failed mutation writes nothing, the file is private, and a JSON document of the earlier
 * version is imported.
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { buildHardware, defaultClusterConfig } from '../../adapters/sim/cluster.js';
import { hardwarePath, SimHardware } from '../../adapters/sim/hardware.js';
import { simNode } from '../../worker/backends.js';
import { rpcInstanceFor } from '../../domain/instance.js';

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HARDWARE_TS = fileURLToPath(new URL('../../adapters/sim/hardware.ts', import.meta.url));

const dirs: string[] = [];
const open: SimHardware[] = [];
afterEach(() => {
  for (const hw of open.splice(0)) hw.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const cfg = defaultClusterConfig('hwtest');

async function seeded(params = {}): Promise<{ home: string; hw: SimHardware }> {
  const home = mkdtempSync(join(tmpdir(), 'sim-hw-test-'));
  dirs.push(home);
  const hw = SimHardware.forHome(home);
  open.push(hw);
  await hw.replace(buildHardware(cfg, params));
  return { home, hw };
}

/** The version of every row of a table, read through a connection of its own. */
function versions(home: string, table: 'nodes' | 'meta' | 'faults'): Record<string, number> {
  const db = new Database(hardwarePath(home), { readonly: true });
  try {
    const rows = db.prepare(`SELECT k, version FROM ${table}`).all() as { k: string; version: number }[];
    return Object.fromEntries(rows.map((r) => [r.k, r.version]));
  } finally {
    db.close();
  }
}

/** Runs `code` (an ES module) in a child Node process with tsx loaded; resolves with its stdout. */
function runChild(code: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

describe('concurrent mutations', () => {
  test('two processes and this one, each mutating its own node, lose no update', async () => {
    const { home, hw } = await seeded();
    const before = hw.read().state;
    const N = 60;
    const go = join(home, 'go');
    // The children wait for `go`, written once both are ready, so that all three write at once.
    const child = (node: string) =>
      runChild(
        `import { existsSync, writeFileSync } from 'node:fs';
         import { SimHardware } from ${JSON.stringify(HARDWARE_TS)};
         const hw = SimHardware.forHome(${JSON.stringify(home)});
         writeFileSync(${JSON.stringify(join(home, 'ready-'))} + ${JSON.stringify(node)}, '');
         while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 2));
         for (let i = 0; i < ${N}; i++) await hw.mutate((s) => {
           s.nodes[${JSON.stringify(node)}].memoryTotal += 1;
           SimHardware.log(s, { node: ${JSON.stringify(node)}, rpc: 'node_info', outcome: 'ok' });
         });
         console.log('done');`,
      );
    const children = [child('node1'), child('node2')];
    while (!existsSync(join(home, 'ready-node1')) || !existsSync(join(home, 'ready-node2'))) {
      await new Promise((r) => setTimeout(r, 5));
    }
    writeFileSync(go, '');
    const parent = (async () => {
      for (let i = 0; i < N; i++) {
        await hw.mutate((s) => {
          s.nodes.node3!.memoryTotal += 1;
          SimHardware.log(s, { node: 'node3', rpc: 'node_info', outcome: 'ok' });
        });
        await new Promise((r) => setImmediate(r));
      }
    })();
    const outs = await Promise.all([...children, parent]);
    expect(outs.slice(0, 2).map((o) => (o as string).trim())).toEqual(['done', 'done']);
    const after = hw.read().state;
    for (const n of ['node1', 'node2', 'node3']) expect(after.nodes[n]!.memoryTotal).toBe(before.nodes[n]!.memoryTotal + N);
    expect(after.logSeq).toBe(before.logSeq + 3 * N);
    expect(after.log.map((e) => e.seq)).toEqual(Array.from({ length: 3 * N }, (_, i) => before.logSeq + i + 1));
    expect(versions(home, 'nodes')).toEqual({ node1: 1 + N, node2: 1 + N, node3: 1 + N });
  }, 60_000);

  test('two instances on one file in one process see each other’s writes at once', async () => {
    const { home, hw } = await seeded();
    const other = SimHardware.forHome(home);
    open.push(other);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? hw : other).mutate((s) => void s.nodes[i % 2 ? 'node1' : 'node2']!.bridges.push(`x${i}`)),
      ),
    );
    const s = other.read().state;
    expect(s.nodes.node1!.bridges.filter((b) => b.startsWith('x'))).toHaveLength(10);
    expect(s.nodes.node2!.bridges.filter((b) => b.startsWith('x'))).toHaveLength(10);
  });

  test('a process killed (SIGKILL) in the middle of mutations leaves every mutation whole or absent', async () => {
    const { home, hw } = await seeded();
    const before = hw.read().state;
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { SimHardware } from ${JSON.stringify(HARDWARE_TS)};
         const hw = SimHardware.forHome(${JSON.stringify(home)});
         for (let i = 0; ; i++) {
           await hw.mutate((s) => {
             s.nodes.node1.memoryTotal += 1;
             SimHardware.log(s, { node: 'node1', rpc: 'node_info', outcome: 'ok' });
           });
           if (i === 20) console.log('going');
         }`,
      ],
      { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    await hw.mutate((s) => void (s.nodes.node2!.memoryTotal += 1));
    const after = hw.read().state;
    const done = after.logSeq - before.logSeq;
    expect(done).toBeGreaterThan(20);
    expect(after.nodes.node1!.memoryTotal).toBe(before.nodes.node1!.memoryTotal + done);
    expect(after.nodes.node2!.memoryTotal).toBe(before.nodes.node2!.memoryTotal + 1);
    expect(after.log).toHaveLength(done);
  }, 30_000);
});

describe('row-wise writes', () => {
  test("a mutation of one node's hardware rewrites that node's row only", async () => {
    const { home, hw } = await seeded();
    const nodes0 = versions(home, 'nodes');
    const meta0 = versions(home, 'meta');
    await hw.mutate((s) => void (s.nodes.node2!.bridges = ['br0', 'br9']));
    const nodes1 = versions(home, 'nodes');
    expect(nodes1).toEqual({ ...nodes0, node2: nodes0.node2! + 1 });
    // The clock, the parameters and the fault counter are untouched (only how far time was advanced moves).
    const meta1 = versions(home, 'meta');
    expect({ ...meta1, advancedTo: 0 }).toEqual({ ...meta0, advancedTo: 0 });
  });

  test("an RPC on one node writes its node and the log, not the other nodes' rows", async () => {
    const { home, hw } = await seeded();
    const node1 = simNode(hw, 'node1');
    const nodes0 = versions(home, 'nodes');
    await node1.nodeInfo();
    expect(versions(home, 'nodes')).toEqual(nodes0);
    await node1.instanceBalloonMemory(rpcInstanceFor(cfg, cfg.instances.web1!, 'node1'), 512);
    expect(versions(home, 'nodes')).toEqual({ ...nodes0, node1: nodes0.node1! + 1 });
    expect(hw.read().state.log.map((e) => e.rpc)).toEqual(['node_info', 'instance_balloon_memory']);
  });

  test('a mutation that throws writes nothing', async () => {
    const { home, hw } = await seeded();
    const v0 = { nodes: versions(home, 'nodes'), meta: versions(home, 'meta') };
    await expect(
      hw.mutate((s) => {
        s.nodes.node1!.memoryTotal = 1;
        SimHardware.log(s, { node: 'node1', rpc: 'node_info', outcome: 'ok' });
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect({ nodes: versions(home, 'nodes'), meta: versions(home, 'meta') }).toEqual(v0);
    expect(hw.read().state.log).toEqual([]);
    expect(hw.read().state.nodes.node1!.memoryTotal).not.toBe(1);
  });

  test('faults are rows: adding, consuming and clearing them keeps the table in step', async () => {
    const { home, hw } = await seeded();
    await hw.mutate((s) => {
      s.faults.push({ id: s.nextFaultId++, rpc: 'node_info', mode: 'transient', skip: 0, remaining: 1, hits: 0 });
      s.faults.push({ id: s.nextFaultId++, rpc: 'instance_list', mode: 'permanent', skip: 0, remaining: null, hits: 0 });
    });
    expect(versions(home, 'faults')).toEqual({ '1': 1, '2': 1 });
    await hw.mutate((s) => void (s.faults[1]!.hits += 1));
    expect(versions(home, 'faults')).toEqual({ '1': 1, '2': 2 });
    await hw.mutate((s) => void (s.faults = s.faults.filter((f) => f.id !== 1)));
    expect(hw.read().state.faults.map((f) => f.id)).toEqual([2]);
    expect(versions(home, 'faults')).toEqual({ '2': 2 });
  });
});

describe('the RPC log', () => {
  test('keeps the newest logLimit entries, whether appended in a mutation or alone', async () => {
    const { hw } = await seeded({ logLimit: 3 });
    for (let i = 0; i < 4; i++) await hw.mutate((s) => SimHardware.log(s, { node: 'node1', rpc: `r${i}`, outcome: 'ok' }));
    await hw.appendLog({ node: 'node2', rpc: 'alone', outcome: 'error', error: 'x' });
    const { state } = hw.read();
    expect(state.log.map((e) => [e.seq, e.rpc])).toEqual([
      [3, 'r2'],
      [4, 'r3'],
      [5, 'alone'],
    ]);
    expect(state.logSeq).toBe(5);
  });

  test('a mutation that reads or replaces the log writes what it leaves', async () => {
    const { hw } = await seeded();
    for (let i = 0; i < 3; i++) await hw.mutate((s) => SimHardware.log(s, { node: 'node1', rpc: `r${i}`, outcome: 'ok' }));
    const seen = await hw.mutate((s) => {
      SimHardware.log(s, { node: 'node1', rpc: 'r3', outcome: 'ok' });
      return s.log.map((e) => e.rpc);
    });
    expect(seen).toEqual(['r0', 'r1', 'r2', 'r3']);
    await hw.mutate((s) => void (s.log = s.log.filter((e) => e.rpc !== 'r1')));
    expect(hw.read().state.log.map((e) => e.rpc)).toEqual(['r0', 'r2', 'r3']);
  });
});

describe('the database file', () => {
  test('is created private (0600) and does not exist before anything is written', async () => {
    const home = mkdtempSync(join(tmpdir(), 'sim-hw-test-'));
    dirs.push(home);
    const hw = SimHardware.forHome(home);
    open.push(hw);
    expect(hw.exists()).toBe(false);
    expect(() => hw.read()).toThrow(/no simulated hardware/);
    expect(existsSync(hardwarePath(home))).toBe(false);
    await hw.replace(buildHardware(cfg));
    expect(hw.exists()).toBe(true);
    expect(statSync(hardwarePath(home)).mode & 0o777).toBe(0o600);
    expect(statSync(`${hardwarePath(home)}-wal`).mode & 0o777).toBe(0o600);
  });

  test('a hardware.json of the earlier version is imported on first open and kept as a backup', async () => {
    const home = mkdtempSync(join(tmpdir(), 'sim-hw-test-'));
    dirs.push(home);
    const doc = buildHardware(cfg, { timeFactor: 3 });
    doc.nodes.node2!.powered = false;
    doc.log.push({ seq: 1, at: 1, node: 'node1', rpc: 'node_info', outcome: 'ok' });
    doc.logSeq = 1;
    mkdirSync(join(home, 'sim'));
    writeFileSync(join(home, 'sim', 'hardware.json'), JSON.stringify(doc, null, 1));
    const hw = SimHardware.forHome(home);
    open.push(hw);
    expect(hw.exists()).toBe(true);
    const { state } = hw.read();
    expect(state.nodes.node2!.powered).toBe(false);
    expect(state.params.timeFactor).toBe(3);
    expect(state.log).toEqual(doc.log);
    expect(existsSync(join(home, 'sim', 'hardware.json'))).toBe(false);
    expect(existsSync(join(home, 'sim', 'hardware.json.bak'))).toBe(true);
    // A second process opening it later finds the database, not the document.
    const again = SimHardware.forHome(home);
    open.push(again);
    expect(again.read().state.nodes.node2!.powered).toBe(false);
  });
});
