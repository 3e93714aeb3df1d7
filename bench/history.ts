/**
 * `npm run bench:history`: the history size of one DRBD live migration with a short and with a long
 * resync, tried as a new user would: `npm start` (the embedded dev server, the orchestrator and the
 * three simulated node agents, on a fresh data directory and free ports), then
 * `sim set --reconnect-resync <MiB>` and `instance migrate web1` with the CLI, then the events of the
 * finished run counted.
 *
 * The waits are heartbeating activities, so nothing in the history may grow with them. What a
 * history holds splits in two: the commands and the activities' events, fixed by the workflow code,
 * and the workflow tasks, one per batch of new events the worker is woken for. Per-node RPCs run in
 * parallel (Ganeti's multi-node calls): when the second of a pair completes while the worker is still
 * busy with the first, it takes a workflow task of its own (3 events) — the split varies from run to
 * run, whatever the wait. Printed per run: the total, the workflow tasks, the rest, timers, activity
 * retries, the encoded size; then the per-event-type difference of the two settings. (The size does grow
 * a little with the wait: the resync progress lines Ganeti prints once per poll round are in the
 * result, at most 200 samples per node and wait.)
 * Environment: BENCH_SHORT_MIB (60: 1 s of resync at 60 MiB/s), BENCH_LONG_MIB (3600: 60 s),
 * BENCH_ROUNDS (1: migrations per setting; web1 moves back and forth).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import protos, { type temporal } from '@temporalio/proto';
import { connectClient, temporalSettings } from '../connection/settings.js';
import { PROJECT_ROOT } from '../worker/temporal-cli.js';

const num = (name: string, dflt: number) => Number(process.env[name] || dflt);
const SHORT = num('BENCH_SHORT_MIB', 60);
const LONG = num('BENCH_LONG_MIB', 3600);
const ROUNDS = num('BENCH_ROUNDS', 1);

type Event = temporal.api.history.v1.IHistoryEvent;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** `npm start` in its own process; resolves once it says what to try. */
async function startStack(): Promise<ChildProcess> {
  const p = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'worker/main.ts'), 'start'], {
    cwd: PROJECT_ROOT,
    env: process.env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('try:')) resolve();
    });
    p.on('exit', (code) => reject(new Error(`npm start exited (${code}):\n${out}`)));
  });
  return p;
}

const run = promisify(execFile);
/** The CLI as a user runs it. */
async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'client/cli.ts'), ...args], {
    cwd: PROJECT_ROOT,
    env: process.env,
    maxBuffer: 16 << 20,
  });
  return stdout;
}

/** The event's type, from its attributes (`activityTaskScheduledEventAttributes` → ACTIVITY_TASK_SCHEDULED). */
const typeOf = (e: Event): string => {
  const key = Object.keys(e).find((k) => k.endsWith('EventAttributes') && e[k as keyof Event]) ?? 'unknown';
  return key
    .replace(/EventAttributes$/, '')
    .replace(/[A-Z]/g, (c) => `_${c}`)
    .toUpperCase();
};

interface Count {
  total: number;
  bytes: number;
  workflowTasks: number;
  rest: number;
  timers: number;
  retries: number;
  byType: Record<string, number>;
}

function count(history: temporal.api.history.v1.IHistory): Count {
  const events = history.events ?? [];
  const byType: Record<string, number> = {};
  for (const e of events) byType[typeOf(e)] = (byType[typeOf(e)] ?? 0) + 1;
  const wft = events.filter((e) => typeOf(e).startsWith('WORKFLOW_TASK_')).length;
  return {
    total: events.length,
    bytes: protos.temporal.api.history.v1.History.encode(history).finish().length,
    workflowTasks: byType.WORKFLOW_TASK_SCHEDULED ?? 0,
    rest: events.length - wft,
    timers: byType.TIMER_STARTED ?? 0,
    retries: events.filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1).length,
    byType,
  };
}

async function main(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'gt-bench-history-'));
  const [dev, ui, codec] = [await freePort(), await freePort(), await freePort()];
  Object.assign(process.env, {
    GANETI_TEMPORAL_HOME: home,
    GANETI_TEMPORAL_DEV_PORT: String(dev),
    GANETI_TEMPORAL_UI_PORT: String(ui),
    GANETI_TEMPORAL_CODEC_PORT: String(codec),
  });
  delete process.env.TEMPORAL_ADDRESS;
  let stack: ChildProcess | undefined;
  try {
    stack = await startStack();
    process.env.TEMPORAL_ADDRESS = `localhost:${dev}`;
    const client = await connectClient(temporalSettings());
    console.log(
      `bench:history: one DRBD live migration of web1 (the demo cluster, simulator 4× real time), resync ${SHORT} vs ${LONG} MiB`,
    );
    const results: Record<string, Count[]> = { short: [], long: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const [label, mib] of [
        ['short', SHORT],
        ['long', LONG],
      ] as const) {
        await cli('sim', 'set', '--reconnect-resync', String(mib));
        const t0 = performance.now();
        await cli('instance', 'migrate', 'web1');
        const secs = (performance.now() - t0) / 1000;
        const history = await client.workflow.getHandle('instance/web1').fetchHistory();
        const c = count(history);
        results[label]!.push(c);
        console.log(
          `  ${label.padEnd(5)} (${String(mib).padStart(5)} MiB, ${secs.toFixed(1).padStart(5)} s): ${c.total} events = ` +
            `${c.rest} commands and activity events + ${c.workflowTasks} workflow tasks × 3; timers ${c.timers}, activity retries ${c.retries}; ` +
            `${(c.bytes / 1024).toFixed(1)} KiB`,
        );
      }
    }
    const a = results.short!.at(-1)!;
    const b = results.long!.at(-1)!;
    console.log(`events: ${a.total} (short) vs ${b.total} (long); without workflow tasks: ${a.rest} vs ${b.rest}`);
    const types = [...new Set([...Object.keys(a.byType), ...Object.keys(b.byType)])].sort();
    const diff = types.filter((t) => a.byType[t] !== b.byType[t]);
    if (diff.length === 0) console.log('  per event type: no difference');
    for (const t of diff) console.log(`  ${t}: ${a.byType[t] ?? 0} → ${b.byType[t] ?? 0}`);
    await client.connection.close();
    if (a.rest !== b.rest || a.timers + b.timers > 0) process.exitCode = 1;
  } finally {
    stack?.kill('SIGINT');
    await new Promise((r) => (stack && stack.exitCode === null ? stack.on('exit', r) : r(null)));
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
