/**
 * `npm run bench:replay`: what a workflow costs the orchestrator's workflow thread when it is built
 * (a new workflow, or one evicted from the sticky cache and replayed from its history), measured by
 * replaying a recorded history (test/histories, default the DRBD live migration) BENCH_ROUNDS times
 * (200) with a replay worker (the same workflow thread and V8 context as a worker's). Printed: the
 * time per replay of the whole history, and of just its first workflow task (the workflow's
 * construction: the bundle's modules evaluated for it, its input validated, its first commands).
 * Run with `node --cpu-prof --cpu-prof-dir=<dir> --import tsx bench/replay-cost.ts` for a profile of
 * the workflow thread (one .cpuprofile per thread).
 * Environment: BENCH_HISTORY (a history file), BENCH_ROUNDS.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import type { temporal } from '@temporalio/proto';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { workerWorkflowBundle } from '../worker/bundle.js';
import { PROJECT_ROOT } from '../worker/temporal-cli.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS || 200);
const FILE = process.env.BENCH_HISTORY || join(PROJECT_ROOT, 'test/histories/migrateInstanceWorkflow/live-drbd.json');

type History = temporal.api.history.v1.IHistory;

async function replay(bundle: Awaited<ReturnType<typeof workerWorkflowBundle>>, history: History, label: string): Promise<void> {
  async function* histories() {
    for (let i = 0; i < ROUNDS; i++) yield { workflowId: `bench-${i}`, history };
  }
  const t0 = performance.now();
  let errors = 0;
  for await (const r of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'bench' }, histories())) {
    if (r.error) {
      if (!errors) console.error(r.error);
      errors++;
    }
  }
  const per = (performance.now() - t0) / ROUNDS;
  console.log(`${label}: ${per.toFixed(1)} ms per replay (${ROUNDS} replays${errors ? `, ${errors} failed` : ''})`);
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const raw = JSON.parse(readFileSync(FILE, 'utf8')) as { events?: unknown[] } | unknown[];
  const history = historyFromJSON(Array.isArray(raw) ? { events: raw } : raw);
  const events = history.events ?? [];
  const bundle = await workerWorkflowBundle();
  // Warm up (the workflow thread's V8 context, the JIT).
  await Worker.runReplayHistory({ workflowBundle: bundle, replayName: 'warmup' }, history, 'warmup');
  // Up to and including the first WorkflowTaskStarted: the workflow's construction and first activation.
  const firstTask = events.findIndex((e) => e.workflowTaskStartedEventAttributes);
  await replay(bundle, { events: events.slice(0, firstTask + 1) }, `first workflow task (${firstTask + 1} events)`);
  await replay(bundle, history, `whole history (${events.length} events)`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
