/**
 * `npm run bench:evacuate`: how close `node migrate` comes to the ideal schedule when it empties a
 * node.
 *
 * A simulated cluster of 11 nodes with 100 DRBD instances whose primary is node1 (secondaries spread
 * over the other ten). The simulator's time factor makes one migration take seconds, not minutes.
 *   t₁     one migration alone, measured in the same run: vm001 migrated to its secondary and back
 *          with the instance workflow (the mean of the two); then
 *   node   `node migrate node1` with C=10 (at once), O=10 (leaving node1), I (arriving per target,
 *          default 2): wall time from the start to the result.
 * Printed: t₁, the node migration's wall time, its ratio to the ideal ⌈N/C⌉·t₁ (goal ≤ 1.15) and to
 * Ganeti's serial N·t₁, and the orchestrator's peak RSS (it runs in its own process, `worker/main.ts
 * orchestrator`, like in production; the node agents run in this process). Every instance must have
 * moved and the migration invariants must hold for all of them.
 * Environment: BENCH_INSTANCES (100), BENCH_NODES (11), BENCH_CONCURRENT (10), BENCH_OUTGOING (10),
 * BENCH_INCOMING (2), BENCH_MEMORY MiB per instance (1024; nodes have room for all of them), BENCH_TIME_FACTOR (2).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { operationResult, startMigration } from '../client/api.js';
import { nodeOperationResult, startNodeMigration } from '../client/node-api.js';
import { ensureKeyFile, keyFilePath } from '../connection/codec.js';
import { clusterDataConverter } from '../connection/settings.js';
import { buildHardware, instanceHwDetail } from '../adapters/sim/cluster.js';
import { evacuationClusterConfig } from '../adapters/sim/evacuation.js';
import { SimHardware } from '../adapters/sim/hardware.js';
import { checkInvariants } from '../adapters/sim/invariants.js';
import { openSqliteStore } from '../adapters/store/open.js';
import { TimingSchema } from '../domain/types.js';
import { workflowBundle } from '../worker/bundle.js';
import { createDevServer } from '../worker/dev-server.js';
import { resolveTemporalCli } from '../worker/temporal-cli.js';
import { cpuSeconds, eventMs, orchestratorBuild, peakRssMib, startOrchestrator, startSimAgents } from './common.js';

const num = (name: string, dflt: number) => Number(process.env[name] || dflt);
const N = num('BENCH_INSTANCES', 100);
const NODES = num('BENCH_NODES', 11);
const C = num('BENCH_CONCURRENT', 10);
const O = num('BENCH_OUTGOING', 10);
const I = num('BENCH_INCOMING', 2);
const MEMORY = num('BENCH_MEMORY', 1024);
const TIME_FACTOR = num('BENCH_TIME_FACTOR', 2);
const CLUSTER = 'bench-evacuate';

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Where a child's time went (BENCH_TRACE=1): activity queueing vs running, workflow-task queueing. */
async function trace(client: TestWorkflowEnvironment['client'], workflowId: string): Promise<string> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const ms = eventMs;
  const at = new Map<string, number>();
  let actQueue = 0;
  let actRun = 0;
  let wfQueue = 0;
  let wfRun = 0;
  const events = history.events ?? [];
  for (const e of events) {
    const t = ms(e.eventTime);
    at.set(String(e.eventId), t);
    if (e.activityTaskStartedEventAttributes) actQueue += t - (at.get(String(e.activityTaskStartedEventAttributes.scheduledEventId)) ?? t);
    if (e.activityTaskCompletedEventAttributes) actRun += t - (at.get(String(e.activityTaskCompletedEventAttributes.startedEventId)) ?? t);
    if (e.workflowTaskStartedEventAttributes) wfQueue += t - (at.get(String(e.workflowTaskStartedEventAttributes.scheduledEventId)) ?? t);
    if (e.workflowTaskCompletedEventAttributes) wfRun += t - (at.get(String(e.workflowTaskCompletedEventAttributes.startedEventId)) ?? t);
  }
  const total = ms(events.at(-1)?.eventTime) - ms(events[0]?.eventTime);
  return `${workflowId}: ${sec(total)} total; activities queued ${sec(actQueue)}, ran ${sec(actRun)}; workflow tasks queued ${sec(wfQueue)}, ran ${sec(wfRun)}`;
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const home = mkdtempSync(join(tmpdir(), 'gt-bench-evacuate-'));
  const workers: Array<{ w: Worker; run: Promise<void> }> = [];
  let env: TestWorkflowEnvironment | undefined;
  let orch: ChildProcess | undefined;
  try {
    const cfg = evacuationClusterConfig(CLUSTER, {
      nodes: NODES,
      instances: N,
      memory: MEMORY,
      nodeMemory: 4096 + N * MEMORY,
    });
    // Ganeti's timings (1 s status poll, 2 s wait-sync rounds).
    cfg.cluster.timing = TimingSchema.parse({});
    cfg.cluster.evacuation = { maxConcurrent: C, maxOutgoing: O, maxIncoming: I };
    const store = openSqliteStore(home);
    await store.initialise(cfg);
    const hw = SimHardware.forHome(home);
    // The simulated hardware is one JSON document every node agent rewrites per RPC: a short RPC log
    // keeps that cheap with 100 instances (a real cluster has no such shared cost).
    await hw.replace(buildHardware(store.readSync(), { timeFactor: TIME_FACTOR, logLimit: 200 }));
    ensureKeyFile(keyFilePath(home));
    const dataConverter = clusterDataConverter(home);

    const cli = await resolveTemporalCli({ log: console.log });
    if (!cli) throw new Error('no Temporal CLI (see docs/operations.md)');
    env = await createDevServer(
      { executable: { type: 'existing-path', path: cli.path }, log: { format: 'pretty', level: 'error' } },
      { dataConverter },
    );
    const bundlePath = join(home, 'workflow-bundle.js');
    writeFileSync(bundlePath, (await workflowBundle()).code);
    orch = await startOrchestrator(home, env.address, bundlePath, {}, { build: orchestratorBuild() });
    workers.push(...(await startSimAgents(env.nativeConnection, { cluster: CLUSTER, home, nodes: Object.keys(cfg.nodes), dataConverter })));
    const client = env.client;
    console.log(
      `bench:evacuate: ${NODES} nodes, ${N} DRBD instances of ${MEMORY} MiB on node1; simulator ${TIME_FACTOR}x real time; ` +
        `limits C=${C}, O=${O}, I=${I}`,
    );

    // t₁: one migration alone, there and back.
    const solo: number[] = [];
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      await operationResult(await startMigration(client, { instance: 'vm001' }, { cluster: CLUSTER }));
      solo.push(performance.now() - t0);
    }
    const t1 = (solo[0]! + solo[1]!) / 2;
    if (process.env.BENCH_TRACE) console.log(`  ${await trace(client, 'instance/vm001')}`);
    console.log(`t₁ (one migration alone): ${sec(t1)} (${solo.map(sec).join(', ')})`);

    const before = store.readSync();
    const cpu0 = { orch: cpuSeconds(orch.pid!), agents: process.cpuUsage() };
    const t0 = performance.now();
    const h = await startNodeMigration(client, { node: 'node1' }, { cluster: CLUSTER, snapshot: before });
    const r = await nodeOperationResult(h);
    const wall = performance.now() - t0;
    const rss = orch.pid ? peakRssMib(orch.pid) : null;
    const cpuOrch = cpuSeconds(orch.pid!) - cpu0.orch;
    const agentsUsage = process.cpuUsage(cpu0.agents);
    const cpuAgents = (agentsUsage.user + agentsUsage.system) / 1e6;

    // Every instance moved to its secondary, and the invariants hold for all.
    const after = store.readSync();
    const { state, now } = hw.read();
    const problems: string[] = [];
    for (const name of Object.keys(before.instances)) {
      const target = before.instances[name]!.disks[0]!.drbd!.nodes[1];
      const inst = after.instances[name]!;
      const v = checkInvariants({ kind: 'migrated', source: 'node1', target }, inst, instanceHwDetail(state, now, inst));
      problems.push(...v.map((x) => `${name}: ${x}`));
    }
    const moved = r.instances.filter((e) => e.state === 'done').length;
    const spans: Array<{ start: number; end: number }> = [];
    for (const e of r.instances) {
      if (!e.workflowId) continue;
      const d = await client.workflow.getHandle(e.workflowId).describe();
      spans.push({ start: d.startTime.getTime(), end: d.closeTime?.getTime() ?? d.startTime.getTime() });
    }
    const durations = spans.map((x) => x.end - x.start).sort((a, b) => a - b);
    const mean = durations.reduce((a, b) => a + b, 0) / Math.max(1, durations.length);
    const events = spans.flatMap((x) => [
      { t: x.start, d: 1 },
      { t: x.end, d: -1 },
    ]);
    events.sort((a, b) => a.t - b.t || a.d - b.d);
    let open = 0;
    let peak = 0;
    for (const ev of events) peak = Math.max(peak, (open += ev.d));
    const ideal = Math.ceil(N / C) * t1;
    const serial = N * t1;
    console.log(`node migrate node1: ${sec(wall)} for ${moved}/${N} instances (${r.errors} errors)`);
    console.log(`  ideal ⌈N/C⌉·t₁ = ${sec(ideal)}: ratio ${(wall / ideal).toFixed(3)} (goal ≤ 1.15)`);
    console.log(`  serial N·t₁ = ${sec(serial)}: ${(serial / wall).toFixed(2)}× faster (ratio ${(wall / serial).toFixed(3)})`);
    // From a child's end to the next start (the parent's reaction: release, lease, start).
    const starts = spans.map((x) => x.start).sort((a, b) => a - b);
    const ends = spans.map((x) => x.end).sort((a, b) => a - b);
    const gaps = starts.slice(Math.min(C, N)).map((st) => st - (ends.filter((e) => e <= st).at(-1) ?? st));
    gaps.sort((a, b) => a - b);
    if (gaps.length)
      console.log(
        `  end → next start: ${(gaps[Math.floor(gaps.length / 2)]! / 1000).toFixed(2)} s median, ${(gaps.at(-1)! / 1000).toFixed(2)} s max`,
      );
    // How full the parent kept its C slots (1 = a child ran in every slot all the time).
    const busy = durations.reduce((a, b) => a + b, 0) / (Math.min(C, N) * wall);
    console.log(`  slot utilisation: ${busy.toFixed(3)} (the children's run time / (C × wall))`);
    console.log(
      `  children: ${sec(mean)} mean, ${sec(durations[Math.floor(durations.length / 2)] ?? 0)} median, ` +
        `${sec(durations.at(-1) ?? 0)} max (t₁ ${sec(t1)}); at most ${peak} at once`,
    );
    if (process.env.BENCH_TRACE) {
      for (const e of r.instances.filter((x) => x.workflowId).slice(-3)) console.log(`  ${await trace(client, e.workflowId!)}`);
    }
    console.log(
      `  CPU during the node migration: orchestrator ${cpuOrch.toFixed(1)} s, node agents + simulator ${cpuAgents.toFixed(1)} s ` +
        `(${((cpuOrch + cpuAgents) / (wall / 1000)).toFixed(2)} cores on average; the machine's load average: ${loadavg()[0]!.toFixed(1)})`,
    );
    console.log(`  orchestrator peak RSS: ${rss === null ? 'unknown' : `${rss.toFixed(0)} MiB`}`);
    console.log(`  invariants: ${problems.length === 0 ? `hold for all ${N}` : `${problems.length} violations`}`);
    for (const p of problems.slice(0, 20)) console.log(`    ${p}`);
    if (problems.length || moved !== N) process.exitCode = 1;
  } finally {
    for (const { w } of workers) w.shutdown();
    await Promise.all(workers.map(({ run }) => run.catch(() => undefined)));
    orch?.kill('SIGTERM');
    await env?.teardown();
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
