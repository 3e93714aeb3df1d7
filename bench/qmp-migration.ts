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
 * Pairs alternate (a), (b), with one VM running at a time (the guest keeps a core busy); each VM runs
 * 1 s before its migration so that its working set is dirty. Measured per run:
 *   migration   QEMU's own total-time of the migration (query-migrate on the source when completed)
 *   hv part     (a) from spawning the destination to the source's exit after the destination runs;
 *               (b) from the end of the step before accept_instance to the end of finalize on the
 *               target: the same work plus the orchestration between the five hypervisor RPCs
 *   end to end  (b) only: client start → workflow result (prerequisites, hooks, DRBD steps included)
 * Medians and ratios b/a are printed. Environment: BENCH_PAIRS (default 9), BENCH_BANDWIDTH MiB/s
 * (default 1024), BENCH_DOWNTIME ms (default 300), BENCH_TRACE=1 (activity timings of each (b) run),
 * and the guest: BENCH_FILL_MB (memory made non-zero once at boot, default 0), BENCH_WS_MB (working
 * set written every pass, default 64), BENCH_IDLE=1 (the guest waits for a timer tick between passes
 * instead of running flat out). BENCH_PROFILE=resident is a VM with 448 MiB in use and a 16 MiB
 * working set written 100 times a second, migrated at QEMU's default 128 MiB/s.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { operationResult, startMigration } from '../client/api.js';
import { rpcInstanceFor, type RpcInstance } from '../domain/instance.js';
import { buildGuest, readHeartbeat } from '../adapters/qemu/guest.js';
import type { QemuNode } from '../adapters/qemu/node.js';
import { freePort } from '../adapters/common/net.js';
import { killPid, qemuProcessesMentioning, spawnDetached, waitGone } from '../adapters/qemu/process.js';
import { QmpClient, withQmp } from '../adapters/qemu/qmp.js';
import { deviceModelArgs, qmpArg } from '../adapters/qemu/runtime.js';
import type { QueryMigrate } from '../adapters/qemu/status.js';
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
  resident: { BENCH_FILL_MB: '448', BENCH_WS_MB: '16', BENCH_IDLE: '1', BENCH_BANDWIDTH: '128' },
};
const env0 = { ...(PROFILES[process.env.BENCH_PROFILE ?? ''] ?? {}), ...process.env };
const PAIRS = Number(env0.BENCH_PAIRS || 9);
const BANDWIDTH = Number(env0.BENCH_BANDWIDTH || 1024); // MiB/s
const FILL_MB = Number(env0.BENCH_FILL_MB || 0);
const WS_MB = Number(env0.BENCH_WS_MB || 64);
const IDLE = env0.BENCH_IDLE === '1';
const DOWNTIME = Number(env0.BENCH_DOWNTIME || 300); // ms
const MEMORY = 512;
const WARMUP_MS = 1000;
const MiB = 1024 * 1024;
const CAPS = {
  capabilities: [
    { capability: 'events', state: true },
    { capability: 'return-path', state: true },
  ],
};

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function waitQmp(path: string, pid: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      (await QmpClient.connect(path, { connectTimeoutMs: 1000 })).close();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`QEMU ${pid} did not open ${path}`);
      await sleep(5);
    }
  }
}

interface Run {
  /** Wall time of the hypervisor part, ms. */
  hv: number;
  /** QEMU's total-time and downtime of the migration, ms. */
  total: number;
  downtime: number;
}

/** (a): boots a VM, lets it dirty its memory, then times the bare QMP migration to a new process. */
async function bareRun(dir: string, args: string[], round: number): Promise<Run> {
  const srcQmp = join(dir, `src-${round}.qmp`);
  const srcPid = await spawnDetached('qemu-system-x86_64', [...args, '-qmp', qmpArg(srcQmp)], join(dir, 'bare.log'));
  await waitQmp(srcQmp, srcPid);
  await sleep(WARMUP_MS);

  const ip = '127.0.2.12';
  const port = await freePort(ip, 8102);
  const qmp = join(dir, `dst-${round}.qmp`);
  const t0 = performance.now();
  const pid = await spawnDetached(
    'qemu-system-x86_64',
    [...args, '-qmp', qmpArg(qmp), '-incoming', `tcp:${ip}:${port}`],
    join(dir, 'bare.log'),
  );
  await waitQmp(qmp, pid);
  await withQmp(qmp, (q) => q.execute('migrate-set-capabilities', CAPS));
  const done = await withQmp(srcQmp, async (q) => {
    await q.execute('migrate-set-capabilities', CAPS);
    await q.execute('migrate-set-parameters', { 'max-bandwidth': BANDWIDTH * MiB, 'downtime-limit': DOWNTIME });
    await q.execute('migrate', { uri: `tcp:${ip}:${port}` });
    for (;;) {
      let m = await q.execute<QueryMigrate>('query-migrate');
      if (m.status === 'completed') {
        // QEMU 7.2 may answer the first `completed` with zero timings: ask again for the statistics.
        for (let k = 0; !m['total-time'] && k < 20; k++) {
          await sleep(25);
          m = await q.execute<QueryMigrate>('query-migrate');
        }
        return m;
      }
      if (m.status === 'failed' || m.status === 'cancelled') throw new Error(`bare migration ${m.status}: ${m['error-desc'] ?? ''}`);
      await sleep(10);
    }
  });
  const st = await withQmp(qmp, (q) => q.execute<{ status: string }>('query-status'));
  if (st.status !== 'running') throw new Error(`(a): the destination is ${st.status}`);
  await withQmp(srcQmp, (q) => q.execute('quit')).catch(() => undefined);
  await waitGone(srcPid, 10_000);
  const hv = performance.now() - t0;

  if (!(await readHeartbeat(qmp)).booted) throw new Error('(a): the guest does not run on the destination');
  await killPid(pid);
  return { hv, total: done['total-time'] ?? 0, downtime: done.downtime ?? 0 };
}

async function trace(handle: WorkflowHandle): Promise<void> {
  const history = await handle.fetchHistory();
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
    t ? Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
  const rows = new Map<string, { name: string; at: number; started: number; done: number }>();
  for (const e of history.events ?? []) {
    const id = String(e.eventId);
    const sch = e.activityTaskScheduledEventAttributes;
    if (sch) rows.set(id, { name: sch.activityType?.name ?? '?', at: ms(e.eventTime), started: 0, done: 0 });
    const st = e.activityTaskStartedEventAttributes;
    if (st) rows.get(String(st.scheduledEventId))!.started = ms(e.eventTime);
    const c = e.activityTaskCompletedEventAttributes;
    if (c) rows.get(String(c.scheduledEventId))!.done = ms(e.eventTime);
  }
  const t0 = [...rows.values()][0]?.at ?? 0;
  for (const r of rows.values()) {
    console.log(
      `      ${String(r.at - t0).padStart(5)} ms  ${r.name.padEnd(30)} to start ${String(r.started - r.at).padStart(4)} ms, ran ${String(r.done - r.started).padStart(4)} ms`,
    );
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const home = mkdtempSync(join(tmpdir(), 'gt-bench-'));
  const workers: Array<{ w: Worker; run: Promise<void> }> = [];
  let env: TestWorkflowEnvironment | undefined;
  try {
    const kernel = buildGuest(join(home, 'guest'), { fillMb: FILL_MB, wsMb: WS_MB, hlt: IDLE });
    const cfg = defaultClusterConfig('bench', { secondaryNet: '127.0.2.', instanceMemory: MEMORY });
    for (const name of Object.keys(cfg.instances)) if (name !== 'web1') delete cfg.instances[name];
    cfg.instances.web1!.hvparams = { migration_bandwidth: BANDWIDTH, migration_downtime: DOWNTIME };
    cfg.cluster.timing = TimingSchema.parse({ migrationPollMs: 10 });
    const store = openSqliteStore(home);
    await store.initialise(cfg);
    const hw = SimHardware.forHome(home);
    await hw.replace(buildHardware(store.readSync(), { timeFactor: 50 }));

    const cli = await resolveTemporalCli({ log: console.log });
    if (!cli) throw new Error('no Temporal CLI (see docs/operations.md)');
    env = await createDevServer({ executable: { type: 'existing-path', path: cli.path }, log: { format: 'pretty', level: 'error' } });
    const add = (w: Worker) => workers.push({ w, run: w.run() });
    const connection = env.nativeConnection;
    add(
      await createOrchestratorWorker({
        connection,
        namespace: 'default',
        cluster: 'bench',
        home,
        client: env.client,
        workflowBundle: await workflowBundle(),
      }),
    );
    for (const node of ['node1', 'node2', 'node3']) {
      const rpc = qemuBackend({ home, node, accel: 'tcg', kernel });
      add(await createNodeAgent({ connection, namespace: 'default', cluster: 'bench', node, rpc, hooks: simHooks(home, node) }));
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

    console.log(
      `bench:qmp: ${PAIRS} pairs; ${MEMORY} MiB VM, tcg, guest with ${FILL_MB} MiB in use, dirtying ${WS_MB} MiB ` +
        `${IDLE ? '100 times a second' : 'flat out'}; max-bandwidth ${BANDWIDTH} MiB/s, downtime-limit ${DOWNTIME} ms`,
    );
    console.log('pair | (a) migration  downtime  hv part | (b) migration  downtime  hv part  end to end');
    const a: Run[] = [];
    const b: Array<Run & { e2e: number }> = [];
    for (let i = 1; i <= PAIRS; i++) {
      a.push(await bareRun(bareDir, args, i));

      const primary = store.readSync().instances.web1!.primaryNode;
      await drivers[primary]!.instanceStart(ri(primary), 'bench');
      await sleep(WARMUP_MS);
      const seq0 = hw.read().state.logSeq;
      const t0 = performance.now();
      const handle = await startMigration(env.client, { instance: 'web1', mode: 'live' }, { cluster: 'bench' });
      const res = await operationResult(handle);
      const e2e = performance.now() - t0;
      const log = hw.read().state.log.filter((e) => e.seq > seq0 && e.instance === 'web1');
      const accept = log.findIndex((e) => e.rpc === 'accept_instance' && e.outcome === 'ok');
      const fin = log.find((e) => e.rpc === 'instance_finalize_migration_dst' && e.outcome === 'ok');
      const stats = log.find((e) => e.rpc === 'instance_get_migration_status' && e.detail?.startsWith('completed'));
      const m = /total-time (\d+) ms, downtime (\d+) ms/.exec(stats?.detail ?? '');
      if (accept < 1 || !fin || !m) throw new Error('(b): the RPC log lacks the migration steps');
      const target = res.targetNode;
      if (!(await readHeartbeat(drivers[target]!.qmpPath('web1'))).booted)
        throw new Error('(b): the guest does not run on the destination');
      if (process.env.BENCH_TRACE) await trace(handle);
      await drivers[target]!.instanceShutdown(ri(target), 30, 'bench');
      b.push({ hv: fin.at - log[accept - 1]!.at, total: Number(m[1]), downtime: Number(m[2]), e2e });

      const x = a.at(-1)!;
      const y = b.at(-1)!;
      const f = (n: number, w = 6) => `${n.toFixed(0).padStart(w)} ms`;
      console.log(
        `${String(i).padStart(4)} |  ${f(x.total)}  ${f(x.downtime, 4)}  ${f(x.hv)} |  ${f(y.total)}  ${f(y.downtime, 4)}  ${f(y.hv)}   ${f(y.e2e)}`,
      );
    }
    const ma = { total: median(a.map((r) => r.total)), downtime: median(a.map((r) => r.downtime)), hv: median(a.map((r) => r.hv)) };
    const mb = {
      total: median(b.map((r) => r.total)),
      downtime: median(b.map((r) => r.downtime)),
      hv: median(b.map((r) => r.hv)),
      e2e: median(b.map((r) => r.e2e)),
    };
    const ratio = (x: number, y: number) => (x / y).toFixed(2);
    console.log('');
    console.log('medians                       (a) bare QMP   (b) workflow   ratio b/a');
    console.log(
      `migration (QEMU total-time)   ${ma.total.toFixed(0).padStart(9)} ms   ${mb.total.toFixed(0).padStart(9)} ms   ${ratio(mb.total, ma.total)}`,
    );
    console.log(
      `downtime (QEMU)               ${ma.downtime.toFixed(0).padStart(9)} ms   ${mb.downtime.toFixed(0).padStart(9)} ms   ${ratio(mb.downtime, ma.downtime)}`,
    );
    console.log(
      `hv part (wall)                ${ma.hv.toFixed(0).padStart(9)} ms   ${mb.hv.toFixed(0).padStart(9)} ms   ${ratio(mb.hv, ma.hv)}`,
    );
    console.log(
      `end to end (wall)             ${ma.hv.toFixed(0).padStart(9)} ms   ${mb.e2e.toFixed(0).padStart(9)} ms   ${ratio(mb.e2e, ma.hv)}`,
    );
    for (const d of Object.values(drivers)) d.close();
  } finally {
    for (const { w } of workers) w.shutdown();
    await Promise.all(workers.map(({ run }) => run.catch(() => undefined)));
    for (const pid of qemuProcessesMentioning(home)) await killPid(pid);
    await env?.teardown();
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
