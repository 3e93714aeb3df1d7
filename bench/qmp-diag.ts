/**
 * `npm run bench:qmp:diag`: does the qemu driver itself make QEMU's own migration slower than the bare
 * QMP script of bench:qmp? Runs bench:qmp's default-profile VM (512 MiB, tcg, 64 MiB written flat out)
 * through these variants, the order rotating each round, no Temporal (docs/qemu.md, "Benchmark"):
 *   bare     the bench's (a)
 *   params   (a) with the driver's capabilities and parameters
 *   poll     (a) polling like the driver: a new monitor connection per status, query-migrate, event
 *            wait (250 ms, then 10 ms, alternating), query-migrate, query-status
 *   driver   the qemu driver's RPCs called directly in the activity's loop
 *   bare-late, driver-late   the same with the guest running 1.6 s instead of 1 s before `migrate`
 *            (under the workflow the prerequisites and disk steps come between start and migrate)
 * Prints QEMU's total-time, passes (dirty-sync-count), MiB sent, and the wall time per run, then the
 * medians. BENCH_PAIRS rounds (default 5), BENCH_BANDWIDTH, BENCH_DOWNTIME, DIAG_VARIANTS (a subset),
 * DIAG_POLL_MS (10), DIAG_STATUS_WAIT_MS (250).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { rpcInstanceFor, type RpcInstance } from '../domain/instance.js';
import { buildGuest } from '../adapters/qemu/guest.js';
import { freePort } from '../adapters/common/net.js';
import { killPid, qemuProcessesMentioning, spawnDetached, waitGone } from '../adapters/qemu/process.js';
import { QmpClient, withQmp } from '../adapters/qemu/qmp.js';
import { deviceModelArgs, qmpArg } from '../adapters/qemu/runtime.js';
import { migrationCaps, type QueryMigrate } from '../adapters/qemu/status.js';
import { buildHardware, defaultClusterConfig } from '../adapters/sim/cluster.js';
import { SimHardware } from '../adapters/sim/hardware.js';
import { openSqliteStore } from '../adapters/store/open.js';
import { qemuNode } from '../worker/backends.js';
import { finalStats } from './qmp-runs.js';

const MiB = 1024 * 1024;
const BW = Number(process.env.BENCH_BANDWIDTH || 1024);
const DT = Number(process.env.BENCH_DOWNTIME || 300);
const ROUNDS = Number(process.env.BENCH_PAIRS || 5);
const VARIANTS = (process.env.DIAG_VARIANTS || 'bare,params,poll,driver').split(',');
const POLL_MS = Number(process.env.DIAG_POLL_MS || 10);
const STATUS_WAIT_MS = Number(process.env.DIAG_STATUS_WAIT_MS || 250);
/** The guest runs 1 s before its migration (as in bench:qmp's (a)); a `-late` variant 1.6 s (as long as before (b)'s). */
const warmupOf = (variant: string) => (variant.endsWith('-late') ? 1600 : 1000);

interface Stat {
  total: number;
  passes: number;
  sent: number;
  wall: number;
  polls: number;
}

async function waitQmp(path: string): Promise<void> {
  for (let i = 0; i < 4000; i++) {
    try {
      (await QmpClient.connect(path, { connectTimeoutMs: 1000 })).close();
      return;
    } catch {
      await sleep(5);
    }
  }
  throw new Error(`no QMP at ${path}`);
}

const stat = (m: QueryMigrate, wall: number, polls: number): Stat => ({
  total: m['total-time'] ?? 0,
  passes: m.ram?.['dirty-sync-count'] ?? 0,
  sent: (m.ram?.transferred ?? 0) / MiB,
  wall,
  polls,
});

/** One bare-QMP migration: `params` the driver's, `poll` the driver's polling. */
async function bare(dir: string, args: string[], round: number, o: { params: boolean; poll: boolean; warmupMs: number }): Promise<Stat> {
  const srcQmp = join(dir, `src-${round}.qmp`);
  const srcPid = await spawnDetached('qemu-system-x86_64', [...args, '-qmp', qmpArg(srcQmp)], join(dir, 'bare.log'));
  await waitQmp(srcQmp);
  await sleep(o.warmupMs);
  const ip = '127.0.2.12';
  const port = await freePort(ip, 8102);
  const qmp = join(dir, `dst-${round}.qmp`);
  const pid = await spawnDetached(
    'qemu-system-x86_64',
    [...args, '-qmp', qmpArg(qmp), '-incoming', `tcp:${ip}:${port}`],
    join(dir, 'bare.log'),
  );
  await waitQmp(qmp);
  const caps = o.params
    ? migrationCaps({})
    : [
        { capability: 'events', state: true },
        { capability: 'return-path', state: true },
      ];
  await withQmp(qmp, (q) => q.execute('migrate-set-capabilities', { capabilities: caps }));
  const t0 = performance.now();
  let polls = 0;
  const src = await QmpClient.connect(srcQmp);
  await src.execute('migrate-set-capabilities', { capabilities: caps });
  await src.execute('migrate-set-parameters', {
    'max-bandwidth': BW * MiB,
    'downtime-limit': DT,
    ...(o.params ? { 'max-postcopy-bandwidth': BW * MiB } : {}),
  });
  await src.execute('migrate', { uri: `tcp:${ip}:${port}` });
  let m: QueryMigrate;
  if (o.poll) src.close(); // QEMU's monitor serves one connection at a time
  if (!o.poll) {
    for (;;) {
      m = await src.execute<QueryMigrate>('query-migrate');
      polls++;
      if (m.status === 'completed' || m.status === 'failed') break;
      await sleep(POLL_MS);
    }
  } else {
    for (let k = 0; ; k++) {
      const r = await withQmp(srcQmp, async (q) => {
        let x = await q.execute<QueryMigrate>('query-migrate');
        if (x.status === 'active' || x.status === 'setup') {
          await q.waitEvent((e) => e.event === 'MIGRATION' && e.data?.status !== 'active', k % 2 ? POLL_MS : STATUS_WAIT_MS);
          x = await q.execute<QueryMigrate>('query-migrate');
        }
        await q.execute('query-status');
        return x;
      });
      polls++;
      if (r.status === 'completed' || r.status === 'failed') break;
    }
  }
  const wall = performance.now() - t0;
  m = o.poll ? await withQmp(srcQmp, finalStats) : await finalStats(src);
  src.close();
  if (m.status !== 'completed') throw new Error(`migration ${m.status}`);
  await withQmp(srcQmp, (q) => q.execute('quit')).catch(() => undefined);
  await waitGone(srcPid, 10_000);
  await killPid(pid);
  return stat(m, wall, polls);
}

async function main(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'gt-diag-'));
  try {
    const kernel = buildGuest(join(home, 'guest'), { fillMb: 0, wsMb: 64, hlt: false });
    const cfg = defaultClusterConfig('diag', { secondaryNet: '127.0.2.', instanceMemory: 512 });
    for (const name of Object.keys(cfg.instances)) if (name !== 'web1') delete cfg.instances[name];
    cfg.instances.web1!.hvparams = { migration_bandwidth: BW, migration_downtime: DT };
    const store = openSqliteStore(home);
    await store.initialise(cfg);
    const hw = SimHardware.forHome(home);
    await hw.replace(buildHardware(store.readSync(), { timeFactor: 50 }));
    // Dual-primary DRBD on both nodes, so the driver's accept finds its disks as during a migration.
    await hw.mutate((s) => {
      for (const n of ['node1', 'node2']) for (const d of Object.values(s.nodes[n]!.drbd)) if (d.instance === 'web1') d.role = 'Primary';
    });
    const drivers = Object.fromEntries(['node1', 'node2'].map((n) => [n, qemuNode({ home, node: n, kernel, watchMs: 0 })]));
    const ri = (node: string): RpcInstance => {
      const c = store.readSync();
      return rpcInstanceFor(c, c.instances.web1!, node);
    };
    const args = deviceModelArgs(ri('node1'), { accel: 'tcg', kernel, sharedDir: join(home, 'shared') });
    const dir = join(home, 'bare');
    mkdirSync(dir, { recursive: true });
    let primary = 'node1';

    async function driver(warmupMs: number): Promise<Stat> {
      const S = primary;
      const T = S === 'node1' ? 'node2' : 'node1';
      const s = drivers[S]!;
      const t = drivers[T]!;
      await s.instanceStart(ri(S), 'diag');
      await sleep(warmupMs);
      const info = await s.migrationInfo(ri(S));
      const ip = cfg.nodes[T]!.secondaryIp;
      const { port } = await t.acceptInstance(ri(T), info, ip, { postcopy: false });
      const t0 = performance.now();
      await s.instanceMigrate(ri(S), { node: T, ip, port }, true, { bandwidth: BW, downtimeMs: DT, autoConverge: false, postcopy: false });
      let polls = 0;
      for (;;) {
        const st = await s.instanceGetMigrationStatus(ri(S));
        polls++;
        if (st.status === 'completed' || st.status === 'failed') break;
        const w = await s.instanceWaitMigrationEvent!(ri(S), POLL_MS);
        if (w.status === 'completed') break;
      }
      const wall = performance.now() - t0;
      const m = await withQmp(s.qmpPath('web1'), finalStats);
      await s.instanceFinalizeMigrationSrc(ri(S), true, true);
      await t.instanceFinalizeMigrationDst(ri(T), info, true);
      await t.instanceShutdown(ri(T), 30, 'diag');
      primary = T;
      return stat(m, wall, polls);
    }

    const results: Record<string, Stat[]> = Object.fromEntries(VARIANTS.map((v) => [v, []]));
    for (let r = 1; r <= ROUNDS; r++) {
      // The order rotates per round: a variant's place in the round must not bias it.
      for (const v of [...VARIANTS.slice(r % VARIANTS.length), ...VARIANTS.slice(0, r % VARIANTS.length)]) {
        const x = v.startsWith('driver')
          ? await driver(warmupOf(v))
          : await bare(dir, args, r * 10 + VARIANTS.indexOf(v), { params: v === 'params', poll: v === 'poll', warmupMs: warmupOf(v) });
        results[v]!.push(x);
        console.log(
          `${r} ${v.padEnd(7)} total ${String(x.total).padStart(5)} ms  passes ${String(x.passes).padStart(3)}  sent ${x.sent.toFixed(0).padStart(5)} MiB  wall ${x.wall.toFixed(0).padStart(5)} ms  polls ${x.polls}`,
        );
      }
    }
    const med = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      const k = Math.floor(s.length / 2);
      return s.length % 2 ? s[k]! : (s[k - 1]! + s[k]!) / 2;
    };
    for (const v of VARIANTS) {
      const xs = results[v]!;
      console.log(
        `median ${v.padEnd(7)} total ${med(xs.map((x) => x.total))} ms  passes ${med(xs.map((x) => x.passes))}  sent ${med(xs.map((x) => x.sent)).toFixed(0)} MiB  wall ${med(xs.map((x) => x.wall)).toFixed(0)} ms`,
      );
    }
    for (const d of Object.values(drivers)) d.close();
  } finally {
    for (const pid of qemuProcessesMentioning(home)) await killPid(pid);
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
