/**
 * `npm run bench:scale`: one orchestrator worker under 1,000 concurrent live migrations.
 *
 * A simulated cluster of BENCH_NODES (100) nodes and BENCH_INSTANCES (1,000) DRBD instances spread
 * over them (instance i on node i mod N, its secondary on the next node), on the embedded dev server.
 * The simulated resync and memory transfer are sized so that one migration alone takes about 10 s
 * (BENCH_RESYNC MiB resynced at BENCH_SYNC_RATE MiB/s, BENCH_MEMORY MiB of guest RAM). First one
 * migration runs alone (its history is the reference count), then every instance is migrated to its
 * secondary at once. The orchestrator runs in its own process (`worker/main.ts orchestrator`), as in
 * production; the 100 node agents run in this process.
 *
 * Printed per configuration engine (BENCH_ENGINES, default `sqlite,postgres`; PostgreSQL is started
 * from Debian's package in a temporary directory, like the tests do): wall time, migrations per second,
 * p50 and p95 activity schedule-to-start latency over all the migrations' histories, the
 * orchestrator's peak RSS, and history events per migration against the single migration's count.
 * Migrations still running after BENCH_DEADLINE seconds (default 3600) count as not completed; the
 * latencies include their activities so far, the event counts only finished migrations'.
 * Targets (issue 12): every migration completes, RSS ≤ 500 MB, dispatch p50 ≤ 50 ms, events per
 * migration equal to the single-migration count.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { operationResult, startMigration } from '../client/api.js';
import { ensureKeyFile, keyFilePath } from '../connection/codec.js';
import { clusterDataConverter } from '../connection/settings.js';
import { buildHardware } from '../adapters/sim/cluster.js';
import { evacuationClusterConfig, evacuationInstanceName } from '../adapters/sim/evacuation.js';
import { SimHardware } from '../adapters/sim/hardware.js';
import { TimingSchema } from '../domain/types.js';
import { orchestratorQueue, workflowIdFor } from '../domain/naming.js';
import { workflowBundle } from '../worker/bundle.js';
import { createDevServer } from '../worker/dev-server.js';
import { resolveTemporalCli } from '../worker/temporal-cli.js';
import {
  eventMs,
  orchestratorBuild,
  orchestratorUnit,
  peakRssMib,
  startAgentHosts,
  startOrchestrator,
  type OrchestratorBuild,
} from './common.js';
import { openBenchStore, type BenchEngine } from './scale-store.js';

const num = (name: string, dflt: number) => Number(process.env[name] || dflt);
const N = num('BENCH_INSTANCES', 1000);
const NODES = num('BENCH_NODES', 100);
const MEMORY = num('BENCH_MEMORY', 128);
const RESYNC = num('BENCH_RESYNC', 120);
const SYNC_RATE = num('BENCH_SYNC_RATE', 60);
const TIME_FACTOR = num('BENCH_TIME_FACTOR', 1);
const START_BATCH = num('BENCH_START_BATCH', 50);
/** How long to wait for the concurrent migrations; those still running then count as not completed. */
const DEADLINE_S = num('BENCH_DEADLINE', 3600);
const AGENT_PROCS = num('BENCH_AGENT_PROCS', 4);
const RECONNECT_TIMEOUT = num('BENCH_RECONNECT_TIMEOUT', 600);
const HEARTBEAT = num('BENCH_RPC_HEARTBEAT', 120);
/** The orchestrator's sticky cache (GANETI_TEMPORAL_MAX_CACHED_WORKFLOWS); empty: the SDK's default. */
const CACHE = process.env.BENCH_CACHE ?? '';
/**
 * glibc's MALLOC_ARENA_MAX for the orchestrator; unset: the systemd unit's (2), which a `dist`
 * orchestrator gets with the unit's other settings; empty: glibc's default (8 per core).
 */
const ARENAS = process.env.BENCH_MALLOC_ARENA_MAX;
/**
 * A directory: the orchestrator writes a heap snapshot of its main thread there (node
 * --heapsnapshot-signal) when half the migrations have finished; summarise it with
 * `tsx bench/heap-summary.ts <file>`.
 */
const HEAP_DIR = process.env.BENCH_HEAPSNAPSHOT ?? '';
/** Extra Node flags for the orchestrator, space-separated, after the unit's (for example V8's heap sizing flags). */
const NODE_FLAGS = (process.env.BENCH_NODE_OPTIONS ?? '').split(' ').filter(Boolean);
/** Extra arguments for the dev server, space-separated (for example `--dynamic-config-value k=v`). */
const SERVER_ARGS = (process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean);
const ENGINES = (process.env.BENCH_ENGINES || 'sqlite,postgres').split(',').filter(Boolean) as BenchEngine[];
const CLUSTER = 'bench-scale';

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;

const ms = eventMs;

/**
 * A finished migration's history: its event count and each activity's schedule-to-start latency
 * (`orch`: those of the orchestrator's own configuration activities; the rest are node RPCs).
 */
async function historyStats(
  client: Client,
  workflowId: string,
): Promise<{ events: number; other: number; timedOut: number; orch: number[]; rpc: number[]; rpcFew: number[]; rpcMany: number[] }> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const scheduled = new Map<string, { at: number; orch: boolean; task: string }>();
  const orch: number[] = [];
  /** Node RPCs per workflow task that scheduled them, and each node RPC's latency with its task. */
  const perTask = new Map<string, number>();
  const rpcTasks: Array<{ latency: number; task: string }> = [];
  let tasks = 0;
  let timedOut = 0;
  for (const e of events) {
    if (e.workflowTaskScheduledEventAttributes || e.workflowTaskStartedEventAttributes || e.workflowTaskCompletedEventAttributes) tasks++;
    // A task that waited longer than the sticky schedule-to-start timeout (then taken from the shared queue).
    if (e.workflowTaskTimedOutEventAttributes) timedOut++;
    const sched = e.activityTaskScheduledEventAttributes;
    if (sched) {
      const task = String(sched.workflowTaskCompletedEventId);
      const isOrch = sched.taskQueue?.name === orchestratorQueue(CLUSTER);
      scheduled.set(String(e.eventId), { at: ms(e.eventTime), orch: isOrch, task });
      if (!isOrch) perTask.set(task, (perTask.get(task) ?? 0) + 1);
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const s = scheduled.get(String(started.scheduledEventId));
      const latency = ms(e.eventTime) - (s?.at ?? ms(e.eventTime));
      if (s?.orch) orch.push(latency);
      else rpcTasks.push({ latency, task: s?.task ?? '' });
    }
  }
  const rpc = rpcTasks.map((r) => r.latency);
  const many = (t: string) => (perTask.get(t) ?? 0) >= 3;
  const rpcFew = rpcTasks.filter((r) => !many(r.task)).map((r) => r.latency);
  const rpcMany = rpcTasks.filter((r) => many(r.task)).map((r) => r.latency);
  // Workflow tasks vary with timing (two RPC completions arriving together share one task); the
  // commands and activity events do not.
  return { events: events.length, other: events.length - tasks - timedOut, timedOut, orch, rpc, rpcFew, rpcMany };
}

interface EngineResult {
  engine: BenchEngine;
  t1: number;
  singleEvents: number;
  singleOther: number;
  wall: number;
  completed: number;
  failed: string[];
  dispatchP50: number;
  dispatchP95: number;
  orchP50: number;
  rpcP50: number;
  /** Node RPCs scheduled by a workflow task with one or two of them, and with three or more: p50, count. */
  rpcFew: { p50: number; n: number };
  rpcMany: { p50: number; n: number };
  rssMib: number | null;
  events: { min: number; max: number; mean: number };
  other: { min: number; max: number };
  timedOutTasks: number;
}

async function runEngine(engine: BenchEngine, cli: { path: string }, bundleCode: string, build: OrchestratorBuild): Promise<EngineResult> {
  const home = mkdtempSync(join(tmpdir(), `gt-bench-scale-${engine}-`));
  let agents: ChildProcess[] = [];
  let env: TestWorkflowEnvironment | undefined;
  let orch: ChildProcess | undefined;
  const db = await openBenchStore(engine, home);
  const { store } = db;
  try {
    const cfg = evacuationClusterConfig(CLUSTER, {
      nodes: NODES,
      instances: N,
      memory: MEMORY,
      nodeMemory: 4096 + 2 * Math.ceil(N / NODES) * MEMORY,
      spread: true,
    });
    // Ganeti's timings, except a longer RPC heartbeat timeout: a thousand simulated nodes' RPCs share
    // a few agent processes on two cores, whose event loops can be busy for seconds at a time.
    cfg.cluster.timing = TimingSchema.parse({ rpcHeartbeatTimeoutSec: HEARTBEAT });
    await store.initialise(cfg);
    const hw = SimHardware.forHome(home);
    await hw.replace(
      buildHardware(cfg, {
        timeFactor: TIME_FACTOR,
        reconnectResync: RESYNC,
        syncRate: SYNC_RATE,
        guestDirtyRate: 2,
        logLimit: 200,
        // DRBD's wait for the peer (Ganeti's 120 s): a peer agent's turn can take longer under 1,000
        // migrations on two cores; still under the 900 s 'normal' RPC timeout.
        reconnectTimeoutSec: RECONNECT_TIMEOUT,
      }),
    );
    ensureKeyFile(keyFilePath(home));
    const dataConverter = clusterDataConverter(home);
    env = await createDevServer(
      { executable: { type: 'existing-path', path: cli.path }, log: { format: 'pretty', level: 'error' }, extraArgs: SERVER_ARGS },
      { dataConverter },
    );
    const bundlePath = join(home, 'workflow-bundle.js');
    writeFileSync(bundlePath, bundleCode);
    orch = await startOrchestrator(
      home,
      env.address,
      bundlePath,
      {
        ...db.env,
        GANETI_TEMPORAL_MAX_CACHED_WORKFLOWS: CACHE,
        ...(ARENAS === undefined ? {} : { MALLOC_ARENA_MAX: ARENAS }),
      },
      {
        build,
        nodeFlags: [...NODE_FLAGS, ...(HEAP_DIR ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${HEAP_DIR}`] : [])],
      },
    );
    agents = await startAgentHosts(AGENT_PROCS, { cluster: CLUSTER, home, address: env.address, nodes: Object.keys(cfg.nodes) });
    const client = env.client;
    const names = Array.from({ length: N }, (_, i) => evacuationInstanceName(i + 1));

    // One migration alone: its time and its history are the reference.
    const t0 = performance.now();
    await operationResult(await startMigration(client, { instance: names[0]! }, { cluster: CLUSTER }));
    const t1 = performance.now() - t0;
    const single = await historyStats(client, workflowIdFor(names[0]!));
    const alone = [...single.rpc].sort((a, b) => a - b);
    console.log(
      `[${engine}] one migration alone: ${sec(t1)}, ${single.events} history events, ` +
        `node RPC schedule-to-start p50 ${pct(alone, 50).toFixed(0)} ms, max ${(alone.at(-1) ?? NaN).toFixed(0)} ms`,
    );
    // Back to where it was, so all N migrate from the spread layout.
    await operationResult(await startMigration(client, { instance: names[0]! }, { cluster: CLUSTER }));

    const startedAt = performance.now();
    const handles: Array<Awaited<ReturnType<typeof startMigration>>> = [];
    for (let i = 0; i < names.length; i += START_BATCH) {
      const batch = names.slice(i, i + START_BATCH);
      handles.push(...(await Promise.all(batch.map((instance) => startMigration(client, { instance }, { cluster: CLUSTER })))));
    }
    console.log(`[${engine}] ${N} migrations started in ${sec(performance.now() - startedAt)}`);
    const failed: string[] = [];
    const finished = new Set<string>();
    const all = Promise.all(
      handles.map((h, i) =>
        operationResult(h)
          .catch((e: unknown) => {
            failed.push(`${names[i]}: ${e instanceof Error ? e.message : String(e)}`);
          })
          .finally(() => {
            finished.add(names[i]!);
            if (HEAP_DIR && finished.size === Math.floor(N / 2)) {
              orch?.kill('SIGUSR2');
              console.log(`[${engine}] heap snapshot of the orchestrator's main thread requested (${HEAP_DIR})`);
            }
          }),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, DEADLINE_S * 1000)));
    await Promise.race([all, deadline]);
    clearTimeout(timer);
    // What failed by the deadline (those still running may fail later, e.g. at the teardown).
    const failures = [...failed];
    const completed = finished.size - failures.length;
    const running = names.filter((n) => !finished.has(n));
    if (running.length) failures.push(`${running.length} still running after ${DEADLINE_S} s (BENCH_DEADLINE)`);
    const wall = performance.now() - startedAt;
    const rssMib = orch.pid ? peakRssMib(orch.pid) : null;

    const dispatch: number[] = [];
    const orchDispatch: number[] = [];
    const rpc: number[] = [];
    const rpcFew: number[] = [];
    const rpcMany: number[] = [];
    const counts: number[] = [];
    const others: number[] = [];
    let timedOutTasks = 0;
    for (let i = 0; i < names.length; i += 50) {
      const stats = await Promise.all(names.slice(i, i + 50).map((n) => historyStats(client, workflowIdFor(n))));
      for (const [j, s] of stats.entries()) {
        if (finished.has(names[i + j]!)) {
          counts.push(s.events);
          others.push(s.other);
        }
        timedOutTasks += s.timedOut;
        dispatch.push(...s.orch, ...s.rpc);
        orchDispatch.push(...s.orch);
        rpc.push(...s.rpc);
        rpcFew.push(...s.rpcFew);
        rpcMany.push(...s.rpcMany);
      }
    }
    dispatch.sort((a, b) => a - b);
    orchDispatch.sort((a, b) => a - b);
    rpc.sort((a, b) => a - b);
    rpcFew.sort((a, b) => a - b);
    rpcMany.sort((a, b) => a - b);
    const cfgAfter = await store.config();
    const moved = names.filter((n) => cfgAfter.instances[n]?.primaryNode === cfg.instances[n]!.disks[0]!.drbd!.nodes[1]).length;
    if (moved !== N) failures.push(`${N - moved} instances not on their former secondary`);
    return {
      engine,
      t1,
      singleEvents: single.events,
      singleOther: single.other,
      wall,
      completed,
      failed: failures,
      dispatchP50: pct(dispatch, 50),
      dispatchP95: pct(dispatch, 95),
      orchP50: pct(orchDispatch, 50),
      rpcP50: pct(rpc, 50),
      rpcFew: { p50: pct(rpcFew, 50), n: rpcFew.length },
      rpcMany: { p50: pct(rpcMany, 50), n: rpcMany.length },
      rssMib,
      events: { min: Math.min(...counts), max: Math.max(...counts), mean: counts.reduce((a, b) => a + b, 0) / counts.length },
      other: { min: Math.min(...others), max: Math.max(...others) },
      timedOutTasks,
    };
  } finally {
    await Promise.all(
      agents.map((p) => new Promise((done) => (p.exitCode !== null ? done(null) : (p.once('exit', done), p.kill('SIGTERM'))))),
    );
    orch?.kill('SIGTERM');
    await env?.teardown();
    await db.close();
    rmSync(home, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const cli = await resolveTemporalCli({ log: console.log });
  if (!cli) throw new Error('no Temporal CLI (see docs/operations.md)');
  const bundleCode = (await workflowBundle()).code;
  const build = orchestratorBuild();
  const unit = orchestratorUnit();
  const arenas = ARENAS ?? (build === 'dist' ? unit.env.MALLOC_ARENA_MAX : undefined);
  console.log(
    `bench:scale: ${NODES} nodes, ${N} DRBD instances of ${MEMORY} MiB; resync ${RESYNC} MiB at ${SYNC_RATE} MiB/s; ` +
      `simulator ${TIME_FACTOR}x real time; engines ${ENGINES.join(', ')}; orchestrator cache ${CACHE || 'SDK default'}; ` +
      `agents in ${AGENT_PROCS} processes, RPC heartbeat timeout ${HEARTBEAT} s; orchestrator from ${build}, ` +
      `MALLOC_ARENA_MAX ${arenas || 'glibc default'}` +
      (build === 'dist' ? `; the unit's Node flags ${unit.nodeFlags.join(' ')}` : '') +
      (NODE_FLAGS.length ? `; Node flags ${NODE_FLAGS.join(' ')}` : '') +
      (SERVER_ARGS.length ? `; dev server ${SERVER_ARGS.join(' ')}` : ''),
  );
  const results: EngineResult[] = [];
  for (const engine of ENGINES) results.push(await runEngine(engine, cli, bundleCode, build));
  for (const r of results) {
    console.log(`\n${r.engine}:`);
    console.log(`  migrations completed: ${r.completed}/${N}${r.completed < N ? ` (${N - r.completed} not)` : ''}`);
    for (const f of r.failed.slice(0, 10)) console.log(`    ${f}`);
    console.log(`  wall time: ${sec(r.wall)} (one alone: ${sec(r.t1)}); ${(N / (r.wall / 1000)).toFixed(1)} migrations/s`);
    console.log(
      `  activity schedule-to-start: p50 ${r.dispatchP50.toFixed(0)} ms, p95 ${r.dispatchP95.toFixed(0)} ms (target p50 ≤ 50 ms); ` +
        `p50 of the orchestrator's activities ${r.orchP50.toFixed(0)} ms, of the node RPCs ${r.rpcP50.toFixed(0)} ms`,
    );
    console.log(
      `  node RPCs scheduled one or two per workflow task: p50 ${r.rpcFew.p50.toFixed(0)} ms (${r.rpcFew.n}); ` +
        `three or more per task: p50 ${r.rpcMany.p50.toFixed(0)} ms (${r.rpcMany.n})`,
    );
    console.log(`  workflow tasks that timed out on the sticky queue: ${r.timedOutTasks}`);
    console.log(`  orchestrator peak RSS: ${r.rssMib === null ? 'unknown' : `${r.rssMib.toFixed(0)} MiB`} (target ≤ 500 MB)`);
    console.log(
      `  history events per migration: ${r.events.min}–${r.events.max} (mean ${r.events.mean.toFixed(1)}); ` +
        `one alone: ${r.singleEvents}${r.events.min === r.singleEvents && r.events.max === r.singleEvents ? ' (equal)' : ' (NOT equal)'}`,
    );
    const same = r.other.min === r.singleOther && r.other.max === r.singleOther;
    console.log(
      `  without workflow-task events (commands, activities): ${r.other.min}–${r.other.max}; one alone: ${r.singleOther}` +
        (same ? ' (equal)' : ' (NOT equal)'),
    );
  }
  console.log(`\nmachine load average at the end: ${loadavg()[0]!.toFixed(1)}`);
  if (results.some((r) => r.failed.length)) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
