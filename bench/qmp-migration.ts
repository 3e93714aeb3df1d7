/**
 * `npm run bench:qmp`: what driving a live migration through the migrate workflow costs over
 * driving QEMU directly.
 *
 * The same VM — 512 MiB, tcg, a guest that writes every page of a 64 MiB working set flat out (the
 * heartbeat guest, assembled from source here) — is live-migrated between two loopback "nodes":
 *   (a) by a bare QMP script: start the destination with -incoming, return-path on both sides,
 *       max-bandwidth/downtime-limit, migrate, poll query-migrate every 10 ms, confirm the
 *       destination runs, quit the source;
 *   (b) through the migrate workflow on a dev server with the qemu backend (a DRBD instance, whose
 *       disks are simulated; the workflow also runs Ganeti's prerequisites and disk steps). The
 *       master's status poll is set to 10 ms like the bare script's; all other timings are Ganeti's.
 * Pairs alternate (a), (b) — odd pairs (a) first, even pairs (b) first — with one VM running at a time (the guest keeps a core busy); each VM runs
 * 1 s before its migration so that its working set is dirty. Measured per run:
 *   migration   QEMU's own total-time of the migration (query-migrate on the source when completed)
 *   hv part     (a) from spawning the destination to the source's exit after the destination runs;
 *               (b) from the end of the step before accept_instance to the end of finalize on the
 *               target: the same work plus the orchestration between the five hypervisor RPCs
 *   end to end  (b) only: client start → workflow result (prerequisites, hooks, DRBD steps included)
 * Medians and ratios b/a are printed, and QEMU's passes of each run. Environment: BENCH_PAIRS (default
 * 9), BENCH_BANDWIDTH MiB/s (default 1024), BENCH_DOWNTIME ms (default 300), BENCH_TRACE=1 (activity
 * timings of each (b) run), BENCH_CPU=1 (who had the CPU during each transfer: bench/cpu-sampler.ts), BENCH_DIRECT=1 (each pair
 * also runs (c): the driver's RPCs called directly, no workflow, with the workers idle — bench/qmp-runs.ts),
 * and the guest: BENCH_FILL_MB (memory made non-zero once at boot, default 0), BENCH_WS_MB (working
 * set written every pass, default 64), BENCH_IDLE=1 (the guest waits for a timer tick between passes
 * instead of running flat out), BENCH_WALK_PAGES/BENCH_HZ (the guest writes that many pages of its
 * working set per timer tick instead of all of it), BENCH_CAPS (QEMU capabilities, e.g. auto-converge:
 * the instance's `migration_caps` for (b), set on both sides by (a)).
 * Profiles (BENCH_PROFILE, comma-separated, or `all`; default `default`):
 *   default          the knobs above at their defaults
 *   resident         448 MiB in use and a 16 MiB working set written 100 times a second, migrated at
 *                    QEMU's default 128 MiB/s
 *   nonconverging    a guest dirtying ~8 MiB/s (2 pages of a 2 MiB working set every ms) against a
 *                    4 MiB/s cap: it converges only because auto-converge throttles it (5 pairs)
 * Each profile runs in this process against its own cluster; the ratios against the bare script are
 * printed per profile, and a summary line per profile at the end.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { CpuSampler, describeWindow } from './cpu-sampler.js';
import { bareRun, directRun, trace, WARMUP_MS, type DirectSetup, type Run } from './qmp-runs.js';
import { operationResult, startMigration } from '../client/api.js';
import { rpcInstanceFor, type RpcInstance } from '../domain/instance.js';
import { buildGuest, readHeartbeat } from '../adapters/qemu/guest.js';
import type { QemuNode } from '../adapters/qemu/node.js';
import { killPid, qemuProcessesMentioning } from '../adapters/qemu/process.js';
import { deviceModelArgs } from '../adapters/qemu/runtime.js';
import { buildHardware, defaultClusterConfig } from '../adapters/sim/cluster.js';
import { SimHardware } from '../adapters/sim/hardware.js';
import { openSqliteStore } from '../adapters/store/open.js';
import { TimingSchema } from '../domain/types.js';
import { qemuBackend, qemuNode } from '../worker/backends.js';
import { workflowBundle } from '../worker/bundle.js';
import { createNodeAgent, simHooks } from '../worker/node-agent.js';
import { createOrchestratorWorker } from '../worker/orchestrator.js';
import { createDevServer } from '../worker/dev-server.js';
import { resolveTemporalCli } from '../worker/temporal-cli.js';

const PROFILES: Record<string, Record<string, string>> = {
  default: {},
  resident: { BENCH_FILL_MB: '448', BENCH_WS_MB: '16', BENCH_IDLE: '1', BENCH_BANDWIDTH: '128' },
  nonconverging: {
    BENCH_FILL_MB: '0',
    BENCH_WS_MB: '2',
    BENCH_WALK_PAGES: '2',
    BENCH_HZ: '1000',
    BENCH_IDLE: '1',
    BENCH_BANDWIDTH: '4',
    BENCH_DOWNTIME: '30',
    BENCH_CAPS: 'auto-converge',
    BENCH_PAIRS: '5',
  },
};

/** One profile's settings: the profile's, overridden by the environment. */
function settingsOf(profile: string) {
  const e = { ...PROFILES[profile], ...process.env };
  const caps = (e.BENCH_CAPS ?? '').split(':').filter(Boolean);
  return {
    pairs: Number(e.BENCH_PAIRS || 9),
    bandwidth: Number(e.BENCH_BANDWIDTH || 1024), // MiB/s
    fillMb: Number(e.BENCH_FILL_MB || 0),
    wsMb: Number(e.BENCH_WS_MB || 64),
    walkPages: Number(e.BENCH_WALK_PAGES || 0),
    hz: Number(e.BENCH_HZ || 100),
    idle: e.BENCH_IDLE === '1',
    downtime: Number(e.BENCH_DOWNTIME || 300), // ms
    caps,
  };
}

const MEMORY = 512;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Summary {
  profile: string;
  hvA: number;
  hvB: number;
  e2e: number;
  /** Medians of the hv part minus QEMU's total-time. */
  fixedA: number;
  fixedB: number;
}

/** One profile: a cluster of its own (store, hardware, workers on the shared dev server), its pairs, its medians. */
async function runProfile(env: TestWorkflowEnvironment, profile: string): Promise<Summary> {
  const s = settingsOf(profile);
  const cluster = `bench-${profile}`;
  const home = mkdtempSync(join(tmpdir(), 'gt-bench-'));
  const workers: Array<{ w: Worker; run: Promise<void> }> = [];
  const cpu = process.env.BENCH_CPU ? new CpuSampler(home) : null;
  cpu?.start();
  try {
    const kernel = buildGuest(join(home, 'guest'), {
      fillMb: s.fillMb,
      wsMb: s.wsMb,
      hlt: s.idle,
      ...(s.walkPages ? { walkPages: s.walkPages } : {}),
      ...(s.hz !== 100 ? { hz: s.hz } : {}),
    });
    const cfg = defaultClusterConfig(cluster, { secondaryNet: '127.0.2.', instanceMemory: MEMORY });
    for (const name of Object.keys(cfg.instances)) if (name !== 'web1') delete cfg.instances[name];
    cfg.instances.web1!.hvparams = {
      migration_bandwidth: s.bandwidth,
      migration_downtime: s.downtime,
      ...(s.caps.length ? { migration_caps: s.caps.join(':') } : {}),
    };
    cfg.cluster.timing = TimingSchema.parse({ migrationPollMs: 10 });
    const store = openSqliteStore(home);
    await store.initialise(cfg);
    const hw = SimHardware.forHome(home);
    await hw.replace(buildHardware(store.readSync(), { timeFactor: 50 }));

    const add = (w: Worker) => workers.push({ w, run: w.run() });
    const connection = env.nativeConnection;
    add(
      await createOrchestratorWorker({
        connection,
        namespace: 'default',
        cluster,
        home,
        client: env.client,
        workflowBundle: await workflowBundle(),
      }),
    );
    for (const node of ['node1', 'node2', 'node3']) {
      const rpc = qemuBackend({ home, node, accel: 'tcg', kernel });
      add(await createNodeAgent({ connection, namespace: 'default', cluster, node, rpc, hooks: simHooks(home, node) }));
    }
    const drivers: Record<string, QemuNode> = Object.fromEntries(
      ['node1', 'node2'].map((n) => [n, qemuNode({ home, node: n, kernel, watchMs: 0 })]),
    );
    const ri = (node: string): RpcInstance => {
      const c = store.readSync();
      return rpcInstanceFor(c, c.instances.web1!, node);
    };
    // (a) runs the very device model the backend gives the instance.
    const args = deviceModelArgs(ri('node1'), { accel: 'tcg', kernel, sharedDir: join(home, 'shared') });
    const bareDir = join(home, 'bare');
    mkdirSync(bareDir, { recursive: true });

    const guest = s.walkPages
      ? `dirtying ${s.walkPages} pages of ${s.wsMb} MiB per tick at ${s.hz} Hz`
      : `dirtying ${s.wsMb} MiB ${s.idle ? `${s.hz} times a second` : 'flat out'}`;
    console.log(
      `bench:qmp profile ${profile}: ${s.pairs} pairs; ${MEMORY} MiB VM, tcg, guest with ${s.fillMb} MiB in use, ${guest}; ` +
        `max-bandwidth ${s.bandwidth} MiB/s, downtime-limit ${s.downtime} ms${s.caps.length ? `, capabilities ${s.caps.join(', ')}` : ''}`,
    );
    console.log('pair | (a) migration  downtime  hv part | (b) migration  downtime  hv part  end to end');
    const a: Run[] = [];
    const b: Array<Run & { e2e: number }> = [];
    const c: Run[] = [];
    const direct: DirectSetup = { drivers, ri, hw, secondaryIp: (n) => cfg.nodes[n]!.secondaryIp };
    const hvSettings = { bandwidth: s.bandwidth, downtimeMs: s.downtime, autoConverge: s.caps.includes('auto-converge'), postcopy: false };
    const runC = async () => {
      const P = store.readSync().instances.web1!.primaryNode;
      const r = await directRun(direct, P, P === 'node1' ? 'node2' : 'node1', hvSettings, 10);
      c.push(r);
      console.log(`     | (c) driver direct: migration ${r.total.toFixed(0)} ms, hv part ${r.hv.toFixed(0)} ms, passes ${r.passes}`);
      if (cpu) console.log(`       (c) ${describeWindow(cpu.window(...r.transfer))}`);
    };
    const runB = async () => {
      const primary = store.readSync().instances.web1!.primaryNode;
      await drivers[primary]!.instanceStart(ri(primary), 'bench');
      await sleep(WARMUP_MS);
      const seq0 = hw.read().state.logSeq;
      const t0 = performance.now();
      const handle = await startMigration(env.client, { instance: 'web1', mode: 'live' }, { cluster });
      const res = await operationResult(handle);
      const e2e = performance.now() - t0;
      const log = hw.read().state.log.filter((e) => e.seq > seq0 && e.instance === 'web1');
      const accept = log.findIndex((e) => e.rpc === 'accept_instance' && e.outcome === 'ok');
      const fin = log.find((e) => e.rpc === 'instance_finalize_migration_dst' && e.outcome === 'ok');
      const stats = log.find((e) => e.rpc === 'instance_get_migration_status' && e.detail?.startsWith('completed'));
      const m = /total-time (\d+) ms, downtime (\d+) ms.*?(?:, (\d+) passes)?$/.exec(stats?.detail ?? '');
      const migrate = log.find((e) => e.rpc === 'instance_migrate' && e.outcome === 'ok');
      if (accept < 1 || !fin || !m || !migrate || !stats) throw new Error('(b): the RPC log lacks the migration steps');
      const target = res.targetNode;
      if (!(await readHeartbeat(drivers[target]!.qmpPath('web1'))).booted)
        throw new Error('(b): the guest does not run on the destination');
      if (process.env.BENCH_TRACE) await trace(handle);
      await drivers[target]!.instanceShutdown(ri(target), 30, 'bench');
      const transfer: [number, number] = [migrate.at, stats.at];
      b.push({ hv: fin.at - log[accept - 1]!.at, total: Number(m[1]), downtime: Number(m[2]), passes: Number(m[3] ?? 0), transfer, e2e });
    };
    for (let i = 1; i <= s.pairs; i++) {
      // The order alternates (odd pairs a, c, b; even pairs b, c, a): no variant always comes first.
      if (i % 2 === 0) await runB();
      else a.push(await bareRun(bareDir, args, i, s));
      if (process.env.BENCH_DIRECT) await runC();
      if (i % 2 === 0) a.push(await bareRun(bareDir, args, i, s));
      else await runB();
      const x = a.at(-1)!;
      const y = b.at(-1)!;
      const f = (n: number, w = 6) => `${n.toFixed(0).padStart(w)} ms`;
      console.log(
        `${String(i).padStart(4)} |  ${f(x.total)}  ${f(x.downtime, 4)}  ${f(x.hv)} |  ${f(y.total)}  ${f(y.downtime, 4)}  ${f(y.hv)}   ${f(y.e2e)}` +
          `   passes ${x.passes} / ${y.passes}`,
      );
      if (cpu)
        for (const [k, r] of [
          ['(a)', x],
          ['(b)', y],
        ] as const)
          console.log(`       ${k} ${describeWindow(cpu.window(...r.transfer))}`);
    }
    const ma = { total: median(a.map((r) => r.total)), downtime: median(a.map((r) => r.downtime)), hv: median(a.map((r) => r.hv)) };
    const mb = {
      total: median(b.map((r) => r.total)),
      downtime: median(b.map((r) => r.downtime)),
      hv: median(b.map((r) => r.hv)),
      e2e: median(b.map((r) => r.e2e)),
    };
    const ratio = (x: number, y: number) => (x / y).toFixed(2);
    const row = (label: string, x: number, y: number) =>
      console.log(`${label.padEnd(30)}${x.toFixed(0).padStart(9)} ms   ${y.toFixed(0).padStart(9)} ms   ${ratio(y, x)}`);
    console.log('');
    console.log(`medians (${profile})`.padEnd(30) + '(a) bare QMP   (b) workflow   ratio b/a');
    row('migration (QEMU total-time)', ma.total, mb.total);
    row('downtime (QEMU)', ma.downtime, mb.downtime);
    row('hv part (wall)', ma.hv, mb.hv);
    row('end to end (wall)', ma.hv, mb.e2e);
    // The hypervisor part without QEMU's own migration time, which varies run to run on a busy machine:
    // what driving the migration costs on top of it (spawning the destination included).
    row('hv part − migration (fixed)', median(a.map((r) => r.hv - r.total)), median(b.map((r) => r.hv - r.total)));
    if (c.length) {
      const mc = (f: (r: Run) => number) => median(c.map(f)).toFixed(0);
      console.log(
        `(c) driver direct: migration ${mc((r) => r.total)} ms, hv part ${mc((r) => r.hv)} ms, fixed ${mc((r) => r.hv - r.total)} ms`,
      );
    }
    const passes = (rs: Run[]) => rs.map((r) => r.passes).join(' ');
    console.log(`passes: (a) ${passes(a)}; (b) ${passes(b)}${c.length ? `; (c) ${passes(c)}` : ''}`);
    console.log('');
    for (const d of Object.values(drivers)) d.close();
    return {
      profile,
      hvA: ma.hv,
      hvB: mb.hv,
      e2e: mb.e2e,
      fixedA: median(a.map((r) => r.hv - r.total)),
      fixedB: median(b.map((r) => r.hv - r.total)),
    };
  } finally {
    cpu?.stop();
    for (const { w } of workers) w.shutdown();
    await Promise.all(workers.map(({ run }) => run.catch(() => undefined)));
    for (const pid of qemuProcessesMentioning(home)) await killPid(pid);
    rmSync(home, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const asked = process.env.BENCH_PROFILE || 'default';
  const profiles = asked === 'all' ? Object.keys(PROFILES) : asked.split(',');
  for (const p of profiles) if (!PROFILES[p]) throw new Error(`unknown BENCH_PROFILE ${p} (${Object.keys(PROFILES).join(', ')}, all)`);
  let env: TestWorkflowEnvironment | undefined;
  try {
    const cli = await resolveTemporalCli({ log: console.log });
    if (!cli) throw new Error('no Temporal CLI (see docs/operations.md)');
    env = await createDevServer({ executable: { type: 'existing-path', path: cli.path }, log: { format: 'pretty', level: 'error' } });
    const out: Summary[] = [];
    for (const p of profiles) out.push(await runProfile(env, p));
    console.log('profile          hv part (a) / (b) = ratio        end to end (b) = ratio     hv part − migration (a) / (b)');
    for (const r of out) {
      console.log(
        `${r.profile.padEnd(16)} ${r.hvA.toFixed(0).padStart(6)} / ${r.hvB.toFixed(0).padStart(6)} ms = ${(r.hvB / r.hvA).toFixed(2)}` +
          `      ${r.e2e.toFixed(0).padStart(6)} ms = ${(r.e2e / r.hvA).toFixed(2)}` +
          `      ${r.fixedA.toFixed(0).padStart(5)} / ${r.fixedB.toFixed(0).padStart(5)} ms`,
      );
    }
  } finally {
    await env?.teardown();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
