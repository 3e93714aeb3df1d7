/** What the benchmarks share: the orchestrator as its own process, simulated node agents, and /proc readings. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DataConverter } from '@temporalio/common';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { createNodeAgent, simBackend, simHooks } from '../worker/node-agent.js';
import { PROJECT_ROOT } from '../worker/temporal-cli.js';

/** Peak resident set of a process (Linux VmHWM), MiB. */
export function peakRssMib(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** CPU time a process used so far (Linux /proc/<pid>/stat utime + stime), seconds. */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** A history event's time, ms since the epoch. */
export const eventMs = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): number =>
  t ? Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;

/**
 * The orchestrator as its own process (`worker/main.ts orchestrator`), as in production, with a
 * prebuilt workflow bundle; resolves once its worker runs. `env`: e.g. the configuration database URL;
 * `nodeFlags`: Node flags after the unit's.
 */
export async function startOrchestrator(
  home: string,
  address: string,
  bundlePath: string,
  env: Record<string, string> = {},
  o: { build?: OrchestratorBuild; nodeFlags?: string[] } = {},
): Promise<ChildProcess> {
  const unit = o.build === 'dist' ? orchestratorUnit() : { nodeFlags: [], env: {} };
  const flags = [...unit.nodeFlags, ...(o.nodeFlags ?? [])];
  const args =
    o.build === 'dist'
      ? [...flags, join(PROJECT_ROOT, 'dist/worker/main.js'), 'orchestrator']
      : [...flags, '--import', 'tsx', join(PROJECT_ROOT, 'worker/main.ts'), 'orchestrator'];
  const p = spawn(process.execPath, args, {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      ...unit.env,
      ...env,
      GANETI_TEMPORAL_HOME: home,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: 'default',
      GANETI_TEMPORAL_WORKFLOW_BUNDLE: bundlePath,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    p.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('orchestrator for cluster')) resolve();
    });
    p.on('exit', (code) => reject(new Error(`the orchestrator exited (${code})`)));
  });
  return p;
}

/**
 * What the systemd unit (deploy/ganeti-temporal-orchestrator.service) gives the orchestrator: the
 * Node flags of its `ExecStart` and its `Environment=` settings. A `dist` orchestrator of the
 * benchmarks runs with them, so that a bench measures what is deployed.
 */
export function orchestratorUnit(): { nodeFlags: string[]; env: Record<string, string> } {
  const text = readFileSync(join(PROJECT_ROOT, 'deploy/ganeti-temporal-orchestrator.service'), 'utf8');
  const exec = /^ExecStart=\S+\s+(.*?)\s*\S+\/dist\/worker\/main\.js orchestrator$/m.exec(text);
  if (!exec) throw new Error('deploy/ganeti-temporal-orchestrator.service: no ExecStart of dist/worker/main.js orchestrator');
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/^Environment=([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/gm)) env[m[1]!] = m[2]!;
  return { nodeFlags: exec[1]!.split(/\s+/).filter(Boolean), env };
}

/**
 * How a benchmark runs the orchestrator: `dist`, the compiled code of `npm run build` under plain
 * Node, as the systemd unit does (built first if dist/ is missing), or `tsx`, the sources through the
 * TypeScript loader, as `npm start` does. BENCH_ORCHESTRATOR, default `dist`.
 */
export type OrchestratorBuild = 'dist' | 'tsx';

/** dist/ is missing, or a file that `npm run build` compiles (tsconfig.build.json's `include`) is newer than it. */
function distIsStale(): boolean {
  const built = join(PROJECT_ROOT, 'dist/BUILD.json');
  if (!existsSync(built)) return true;
  const at = statSync(built).mtimeMs;
  const newer = (path: string): boolean =>
    statSync(path).isDirectory()
      ? readdirSync(path).some((name) => newer(join(path, name)))
      : path.endsWith('.ts') && statSync(path).mtimeMs > at;
  const { include } = JSON.parse(readFileSync(join(PROJECT_ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
  return include.some((p) => existsSync(join(PROJECT_ROOT, p)) && newer(join(PROJECT_ROOT, p)));
}

export function orchestratorBuild(env: NodeJS.ProcessEnv = process.env): OrchestratorBuild {
  const raw = env.BENCH_ORCHESTRATOR || 'dist';
  if (raw !== 'dist' && raw !== 'tsx') throw new Error(`BENCH_ORCHESTRATOR must be dist or tsx (got ${JSON.stringify(raw)})`);
  if (raw === 'dist' && distIsStale()) {
    console.log('building dist/ for the orchestrator (npm run build)');
    const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'scripts/build.mjs')], { cwd: PROJECT_ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('npm run build failed');
  }
  return raw;
}

/** A simulated node agent per node, in this process, running until `stopAgents`. */
export async function startSimAgents(
  connection: NativeConnection,
  o: { cluster: string; home: string; nodes: string[]; dataConverter: DataConverter },
): Promise<Array<{ w: Worker; run: Promise<void> }>> {
  const workers: Array<{ w: Worker; run: Promise<void> }> = [];
  for (const node of o.nodes) {
    const w = await createNodeAgent({
      connection,
      namespace: 'default',
      cluster: o.cluster,
      node,
      rpc: simBackend(o.home, node),
      hooks: simHooks(o.home, node),
      dataConverter: o.dataConverter,
    });
    workers.push({ w, run: w.run() });
  }
  return workers;
}

/**
 * The simulated node agents in `procs` processes of their own (bench/agent-host.ts), the nodes dealt
 * round-robin; resolves once all poll.
 */
export async function startAgentHosts(
  procs: number,
  o: { cluster: string; home: string; address: string; nodes: string[] },
): Promise<ChildProcess[]> {
  const groups: string[][] = Array.from({ length: Math.max(1, Math.min(procs, o.nodes.length)) }, () => []);
  o.nodes.forEach((n, i) => groups[i % groups.length]!.push(n));
  return Promise.all(
    groups.map(async (nodes) => {
      const p = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'bench/agent-host.ts'), nodes.join(',')], {
        cwd: PROJECT_ROOT,
        env: { ...process.env, GANETI_TEMPORAL_HOME: o.home, TEMPORAL_ADDRESS: o.address, BENCH_CLUSTER: o.cluster },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve, reject) => {
        p.stdout!.on('data', (d: Buffer) => {
          if (d.toString().includes('agents ready')) resolve();
        });
        p.on('exit', (code) => reject(new Error(`an agent host exited (${code})`)));
      });
      return p;
    }),
  );
}
