/**
 * One agent per node, with real processes (`worker/main.ts node-agent`): a second agent for a node
 * refuses to start while the first runs, an agent for a node the configuration does not have refuses
 * too, a lock left by a SIGKILLed agent is taken over, and a stopped agent releases its lock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { agentLockPath } from '../../worker/agent-lock.js';
import { PROJECT_ROOT } from '../../worker/temporal-cli.js';
import { createTestCluster, type TestCluster } from '../helpers/cluster.js';
import { useServer } from '../helpers/temporal.js';

const server = useServer();
const children: ChildProcess[] = [];
const clusters: TestCluster[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) await stop(c, 'SIGKILL');
  for (const c of clusters.splice(0)) c.remove();
});

interface Agent {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code once the process exited. */
  exited: Promise<number | null>;
}

function agent(c: TestCluster, node: string): Agent {
  const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'worker/main.ts'), 'node-agent', '--node', node], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, GANETI_TEMPORAL_HOME: c.home, TEMPORAL_ADDRESS: server.env().address, TEMPORAL_NAMESPACE: 'default' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

async function ready(a: Agent): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!a.output().includes('node agent for')) {
    if (a.child.exitCode !== null) throw new Error(`the agent exited with ${a.child.exitCode}:\n${a.output()}`);
    if (Date.now() > deadline) throw new Error(`the agent is not ready after 60 s:\n${a.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.on('exit', r));
  child.kill(signal);
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
}

test('a second agent for the same node refuses to start; one for an unknown node too; a SIGKILLed agent’s lock is taken over', async () => {
  const c = await createTestCluster();
  clusters.push(c);
  const lock = agentLockPath(c.home, 'node1');

  const first = agent(c, 'node1');
  await ready(first);
  expect(JSON.parse(readFileSync(lock, 'utf8'))).toMatchObject({ pid: first.child.pid, node: 'node1' });

  // Two more at once: both refused, the first keeps running.
  const [second, third] = [agent(c, 'node1'), agent(c, 'node1')];
  expect(await second.exited).toBe(1);
  expect(await third.exited).toBe(1);
  expect(second.output()).toContain(`a node agent for node1 already runs (pid ${first.child.pid}`);
  expect(first.child.exitCode).toBeNull();

  // Another node is another lock.
  const other = agent(c, 'node2');
  await ready(other);

  const unknown = agent(c, 'node9');
  expect(await unknown.exited).toBe(1);
  expect(unknown.output()).toContain('node "node9" is not in the configuration of cluster');
  expect(existsSync(agentLockPath(c.home, 'node9'))).toBe(false);

  // SIGKILL leaves the lock file; the next agent finds its holder gone and takes it over.
  await stop(first.child, 'SIGKILL');
  expect(existsSync(lock)).toBe(true);
  const successor = agent(c, 'node1');
  await ready(successor);
  expect(JSON.parse(readFileSync(lock, 'utf8'))).toMatchObject({ pid: successor.child.pid });

  // A clean stop releases it.
  await stop(successor.child, 'SIGTERM');
  expect(successor.child.exitCode).toBe(0);
  expect(existsSync(lock)).toBe(false);
});
