/**
 * One chaos run: a fresh cluster and its processes (dev server, orchestrator, one agent per node),
 * the planned faults, the operation, one SIGKILL of the planned process at the planned moment and its
 * restart, then the checker. Every process started is killed at the end, whatever happened.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { InvariantCase } from '../adapters/sim/invariants.js';
import { READ_ONLY_RPCS } from '../adapters/sim/state.js';
import { startFailover, startMigration, startStartup } from '../client/api.js';
import { startCommand } from '../domain/naming.js';
import { clusterViolations, outcomeViolations, settle, steadyViolations, TransferWatch, waitForEnd, type Ended } from './check.js';
import { createCrashCluster, type CrashCluster } from './cluster.js';
import type { RunPlan } from './plan.js';
import { Stack, type Proc } from './procs.js';
import { QemuRun } from './qemu.js';

export interface RunEnv {
  temporalCli: string;
  workflowBundlePath: string;
  backend: 'sim' | 'qemu';
  /** qemu: the heartbeat guest kernel. */
  kernel?: string;
  /** Longest an operation may take before the run counts as hung. */
  operationTimeoutMs?: number;
  log?: (msg: string) => void;
}

export interface RunReport {
  seed: number;
  plan: RunPlan;
  /** completed: ended as planned unattended; repaired: needed the operator's repair, which worked. */
  result: 'completed' | 'repaired' | 'failed' | 'violation';
  /** The operation's end (and of its repair), as the checker saw it. */
  ended: string;
  kill: { kind: string; atMs: number | null; restartedAtMs: number | null; during: boolean };
  /** Seconds from the restart to the operation's next completed step (null: nothing left to resume). */
  resumeSec: number | null;
  /** That step (e.g. "drbdAttachNet failed"). */
  resumedBy: string | null;
  violations: string[];
  durationSec: number;
  /** The run's directory, kept when something went wrong. */
  home?: string;
}

type Op = { handle: WorkflowHandle; ended?: Ended | null };

export async function runOnce(plan: RunPlan, env: RunEnv): Promise<RunReport> {
  const t0 = Date.now();
  const log = env.log ?? (() => undefined);
  const c = await createCrashCluster({
    ...(env.backend === 'qemu' ? { qemu: { keep: [plan.instance], memory: 128 } } : {}),
    configure: (cfg) => {
      if (plan.operation !== 'failover-down') return;
      const inst = cfg.instances[plan.instance]!;
      inst.adminState = 'down';
      inst.disksActive = false;
    },
  });
  const qemu = env.backend === 'qemu' ? new QemuRun(c, env.kernel ?? null) : undefined;
  const stack = new Stack({
    home: c.home,
    temporalCli: env.temporalCli,
    workflowBundlePath: env.workflowBundlePath,
    backend: env.backend,
    env: env.kernel ? { GANETI_TEMPORAL_QEMU_KERNEL: env.kernel, GANETI_TEMPORAL_QEMU_ACCEL: 'tcg' } : {},
  });
  const report: RunReport = {
    seed: plan.seed,
    plan,
    result: 'violation',
    ended: '',
    kill: { kind: plan.kill.kind, atMs: null, restartedAtMs: null, during: false },
    resumeSec: null,
    resumedBy: null,
    violations: [],
    durationSec: 0,
  };
  try {
    await qemu?.boot(plan.instance);
    await stack.startAll(c.nodes());
    for (const f of plan.faults) await c.addFault(f);
    const client = await stack.connect();
    log(`  processes up after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const startSeq = c.hw.read().state.logSeq;
    const ops: Op[] = [];
    let finished = false;
    const killer = killAndRestart(plan, c, stack, startSeq, () => finished, report);
    const watch = plan.operation.startsWith('migrate') ? new TransferWatch(c, plan.instance, plan.source, plan.target) : undefined;
    const deadline = Date.now() + (env.operationTimeoutMs ?? 180_000);
    try {
      await operate(plan, c, client, ops, deadline);
    } finally {
      finished = true;
      await killer;
      await watch?.stop();
    }
    const resumed = await resumeAfter(client, ops, report.kill.restartedAtMs, deadline);
    report.resumeSec = resumed?.sec ?? null;
    report.resumedBy = resumed?.by ?? null;
    await check(plan, c, client, ops, report, deadline);
    if (watch) report.violations.push(...watch.violations());
    if (qemu) report.violations.push(...(await qemu.check(plan.instance)));
  } catch (e) {
    report.violations.push(`run error: ${(e as Error).message}`);
  } finally {
    await stack.killAll();
    const left = stack.alivePids();
    if (left.length) report.violations.push(`orphan processes after the run: ${left.join(', ')}`);
    if (qemu) report.violations.push(...(await qemu.teardown()));
    report.durationSec = (Date.now() - t0) / 1000;
    if (report.violations.length) report.result = 'violation';
    if (report.violations.length) report.home = c.home;
    else c.remove();
  }
  return report;
}

/** Starts the planned operation (for migrate-fail-cleanup: the failing migration, then the cleanup). */
async function operate(plan: RunPlan, c: CrashCluster, client: Client, ops: Op[], deadline: number): Promise<void> {
  const opts = { cluster: c.name, snapshot: c.cfg() };
  const instance = plan.instance;
  let handle: WorkflowHandle;
  if (plan.operation === 'failover-up' || plan.operation === 'failover-down') {
    handle = await retrying(() => startFailover(client, { instance, shutdownTimeout: 10 }, opts), deadline);
  } else {
    const mode = plan.operation === 'migrate-non-live' ? 'non-live' : 'live';
    handle = await retrying(() => startMigration(client, { instance, mode }, opts), deadline);
  }
  ops.push({ handle });
  ops[0]!.ended = await waitForEnd(client, handle, deadline);
  if (plan.operation === 'migrate-fail-cleanup' && ops[0]!.ended && !ops[0]!.ended.ok) {
    const cleanup = await retrying(() => startMigration(client, { instance, cleanup: true }, { cluster: c.name }), deadline);
    ops.push({ handle: cleanup });
    ops[1]!.ended = await waitForEnd(client, cleanup, deadline);
  }
}

/** Calls `fn` until it succeeds or the deadline passes (the server may be down for a moment). */
async function retrying<T>(fn: () => Promise<T>, deadline: number): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline || (e as Error).name === 'InstanceBusy') throw e;
      await sleep(300);
    }
  }
}

/** How many state-changing RPCs of the instance have been answered since `sinceSeq`. */
function stepsSince(c: CrashCluster, instance: string, sinceSeq: number): number {
  return c.log().filter((e) => e.seq > sinceSeq && e.instance === instance && e.outcome === 'ok' && !READ_ONLY_RPCS.has(e.rpc)).length;
}

async function killAndRestart(
  plan: RunPlan,
  c: CrashCluster,
  stack: Stack,
  startSeq: number,
  finished: () => boolean,
  report: RunReport,
): Promise<void> {
  const k = plan.kill;
  while (!finished() && stepsSince(c, plan.instance, startSeq) < k.afterSteps) await sleep(20);
  await sleep(k.jitterMs);
  report.kill.during = !finished();
  const victim: Proc | undefined =
    k.kind === 'server' ? stack.server : k.kind === 'orchestrator' ? stack.orchestrator : stack.agents.get(k.node!);
  await victim?.kill();
  report.kill.atMs = Date.now();
  await sleep(k.downMs);
  report.kill.restartedAtMs = Date.now();
  if (k.kind === 'server') await stack.startServer();
  else if (k.kind === 'orchestrator') await stack.startOrchestrator();
  else await stack.startAgent(k.node!);
}

const runIdOf = (h: WorkflowHandle): string | undefined => (h as { firstExecutionRunId?: string }).firstExecutionRunId;

function eventMs(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  if (!t) return 0;
  const s = t.seconds as number | { toNumber(): number } | null | undefined;
  const sec = typeof s === 'number' ? s : (s?.toNumber() ?? 0);
  return sec * 1000 + (t.nanos ?? 0) / 1e6;
}

/**
 * Seconds from the restart to the first step the operation completed after it (an activity that
 * completed or failed, or the end of the workflow), and which step that was. Null when the kill came
 * after the operation had ended.
 */
async function resumeAfter(
  client: Client,
  ops: Op[],
  restartedAt: number | null,
  deadline: number,
): Promise<{ sec: number; by: string } | null> {
  if (restartedAt === null) return null;
  let first: { at: number; by: string } | null = null;
  for (const op of ops) {
    // By run ID: the operation and its cleanup share the workflow ID.
    const run = client.workflow.getHandle(op.handle.workflowId, runIdOf(op.handle));
    const events = (await retrying(() => run.fetchHistory(), deadline)).events ?? [];
    const types = new Map(events.map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes?.activityType?.name ?? '']));
    for (const e of events) {
      const act = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
      const end = e.workflowExecutionCompletedEventAttributes ?? e.workflowExecutionFailedEventAttributes;
      const at = eventMs(e.eventTime);
      if ((!act && !end) || at < restartedAt || (first && at >= first.at)) continue;
      const by = act
        ? `${types.get(String(act.scheduledEventId)) ?? 'activity'} ${e.activityTaskFailedEventAttributes ? 'failed' : 'completed'}`
        : 'workflow end';
      first = { at, by };
    }
  }
  return first === null ? null : { sec: Math.max(0, (first.at - restartedAt) / 1000), by: first.by };
}

/** The invariant case for how an operation ended successfully. */
function caseFor(plan: RunPlan, outcome: string): InvariantCase {
  if (outcome === 'migrated') return { kind: 'migrated', source: plan.source, target: plan.target };
  if (outcome === 'failed-over') return { kind: 'failed-over', source: plan.source, target: plan.target, sourceOnline: true };
  if (outcome === 'started') return { kind: 'started', remembered: true };
  return { kind: 'cleaned-up' };
}

async function check(plan: RunPlan, c: CrashCluster, client: Client, ops: Op[], r: RunReport, deadline: number): Promise<void> {
  const last = ops.at(-1);
  const ended = last?.ended;
  if (!last || !ended) {
    r.ended = 'did not end in time';
    r.violations.push(`the operation did not end within the deadline (seed ${plan.seed})`);
    return;
  }
  const expectFailFirst = plan.operation === 'migrate-fail-cleanup';
  r.ended = ops
    .map((o) => (o.ended?.ok ? o.ended.outcome : `${o.ended?.type}${o.ended?.needsOperator ? ' (needs operator)' : ''}`))
    .join(' → ');
  if (expectFailFirst && ops.length === 1 && ended.ok) r.ended += ' (the planned failure did not happen)';
  await settle(c, plan.instance);
  if (ended.ok) {
    r.violations.push(...outcomeViolations(c, plan.instance, caseFor(plan, ended.outcome)));
    r.result = 'completed';
  } else if (ended.needsOperator) {
    // The operator's repair, as the failure names it: migrate --cleanup after a migration; after a
    // failover, instance start once the primary was swapped, otherwise the failover again.
    const failover = plan.operation.startsWith('failover');
    const startAfterSwap = failover && ended.message.includes(startCommand(plan.instance));
    const opts = { cluster: c.name };
    const repair = startAfterSwap
      ? await retrying(() => startStartup(client, { instance: plan.instance }, opts), deadline)
      : failover
        ? await retrying(() => startFailover(client, { instance: plan.instance, shutdownTimeout: 10 }, opts), deadline)
        : await retrying(() => startMigration(client, { instance: plan.instance, cleanup: true }, opts), deadline);
    const fixed = await waitForEnd(client, repair, deadline);
    r.ended += ` → repair: ${fixed ? (fixed.ok ? fixed.outcome : `${fixed.type}: ${fixed.message}`) : 'did not end'}`;
    await settle(c, plan.instance);
    const what = startAfterSwap ? 'instance start' : failover ? 'failover' : 'migrate --cleanup';
    if (!fixed?.ok) r.violations.push(`the repair (${what}) did not succeed: ${r.ended}`);
    else r.violations.push(...outcomeViolations(c, plan.instance, caseFor(plan, fixed.outcome)));
    r.result = 'repaired';
  } else {
    // Failed without asking for an operator: the instance must be at rest where it was.
    r.ended += `: ${ended.message}`;
    r.violations.push(...steadyViolations(c, plan.instance));
    r.result = 'failed';
  }
  r.violations.push(...clusterViolations(c, plan.instance));
}
