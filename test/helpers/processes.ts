/**
 * The project's entry points as child processes for tests: `worker/main.ts start` (the whole stack)
 * and `worker/main.ts node-agent --backend qemu` (one node's agent, optionally inside a network
 * namespace), each resolved once its output says it is ready.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { inject } from 'vitest';
import { PROJECT_ROOT } from '../../worker/temporal-cli.js';

/** Resolves once `ready(output)` holds; rejects when the process exits first or after `timeoutMs`. */
export function whenReady(child: ChildProcess, ready: (out: string) => boolean, timeoutMs: number, what: string): Promise<() => string> {
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => finish(new Error(`${what} not ready after ${timeoutMs / 1000} s:\n${out}`)), timeoutMs);
    const check = setInterval(() => ready(out) && finish(null), 50);
    const onExit = (code: number | null) => finish(new Error(`${what} exited with ${code}:\n${out}`));
    child.once('exit', onExit);
    function finish(e: Error | null) {
      clearTimeout(t);
      clearInterval(check);
      child.off('exit', onExit);
      if (e) reject(e);
      else resolve(() => out);
    }
  });
}

/** `worker/main.ts start …args` with `env`; resolves once `ready` (default: the stack's "try:" line). */
export async function startStack(
  env: Record<string, string>,
  args: string[] = [],
  o: { ready?: (out: string) => boolean; timeoutMs?: number; track?: ChildProcess[] } = {},
): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'worker/main.ts'), 'start', ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, TEMPORAL_CLI: inject('temporalCli'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  o.track?.push(child);
  const output = await whenReady(
    child,
    o.ready ?? ((out) => out.includes('try: npm run --silent cli')),
    o.timeoutMs ?? 60_000,
    'the stack',
  );
  return { child, output };
}

/** Ctrl-C, then SIGKILL after `graceMs`. */
export async function interrupt(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGINT');
  await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export interface QemuAgentProcess {
  node: string;
  cluster: string;
  home: string;
  /** Where the agent reaches Temporal. */
  address: string;
  kernel: string;
  /** Runs the agent inside a network namespace (`ip netns exec <ns>`). */
  netns?: string;
}

/** `node-agent --backend qemu` (tcg, fault injection on) as its own process, once it polls. */
export async function spawnQemuAgent(o: QemuAgentProcess): Promise<ChildProcess> {
  const argv = [
    process.execPath,
    '--import',
    'tsx',
    'worker/main.ts',
    'node-agent',
    '--backend',
    'qemu',
    '--node',
    o.node,
    '--cluster',
    o.cluster,
  ];
  const [cmd, ...args] = o.netns ? ['ip', 'netns', 'exec', o.netns, ...argv] : argv;
  const child = spawn(cmd!, args, {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      GANETI_TEMPORAL_HOME: o.home,
      TEMPORAL_ADDRESS: o.address,
      GANETI_TEMPORAL_QEMU_KERNEL: o.kernel,
      GANETI_TEMPORAL_QEMU_ACCEL: 'tcg',
      GANETI_TEMPORAL_FAULT_INJECTION: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await whenReady(child, (out) => out.includes(`node agent for ${o.node}`), 60_000, `the node agent of ${o.node}`);
  return child;
}
