/**
 * Real OS processes for crash tests and the chaos suite: the Temporal dev server on a SQLite file, the
 * orchestrator and one node agent per node, each its own process (`node --import tsx worker/main.ts …`,
 * no wrapper process in between, so the pid we SIGKILL is the worker itself). Output goes to one log
 * file per process under `<home>/logs/`. `Stack.killAll` ends every process it started, by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TypedSearchAttributes } from '@temporalio/common';
import { Client, Connection } from '@temporalio/client';
import { ensureKeyFile, keyFilePath } from '../connection/codec.js';
import { clusterDataConverter } from '../connection/settings.js';
import { SEARCH_ATTRIBUTES } from '../workflows/messages.js';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../worker/dev-server.js';
import { PROJECT_ROOT } from '../worker/temporal-cli.js';

export const MAIN = join(PROJECT_ROOT, 'worker', 'main.ts');

/** A free TCP port on 127.0.0.1 (bound and released; good enough for a test's own processes). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** One child process, its log file, and a promise of its exit. */
export class Proc {
  readonly exited: Promise<number | string | null>;
  private code: number | string | null | undefined;
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logPath: string,
    /** Where this process's output starts in the (shared, appended) log file. */
    readonly logOffset = 0,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.code = signal ?? code;
        resolve(this.code);
      });
      child.once('error', () => {
        this.code = 'spawn-error';
        resolve(this.code);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.code === undefined;
  }

  /** This process's output (not its predecessors' in the same log file). */
  log(): string {
    try {
      return readFileSync(this.logPath).subarray(this.logOffset).toString('utf8');
    } catch {
      return '';
    }
  }

  /** Waits until the log contains `text` (or the process exits, or the time runs out). */
  async waitForLog(text: string | RegExp, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const out = this.log();
      if (typeof text === 'string' ? out.includes(text) : text.test(out)) return;
      if (!this.alive) throw new Error(`${this.name} exited (${String(this.code)}) before it was ready:\n${out.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`${this.name} not ready after ${timeoutMs} ms:\n${out.slice(-2000)}`);
      await sleep(50);
    }
  }

  /** SIGKILL (no shutdown of any kind) and wait until it is gone. */
  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }
}

export function spawnLogged(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, logDir: string): Proc {
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `${name}.log`);
  const fd = openSync(logPath, 'a');
  try {
    const offset = fstatSync(fd).size;
    const child = spawn(cmd, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', fd, fd] });
    return new Proc(name, child, logPath, offset);
  } finally {
    closeSync(fd);
  }
}

export interface StackOptions {
  /** GANETI_TEMPORAL_HOME of the cluster (the dev server's database lives under it too). */
  home: string;
  /** The Temporal CLI binary. */
  temporalCli: string;
  /** A prebuilt workflow bundle file for the orchestrator (GANETI_TEMPORAL_WORKFLOW_BUNDLE). */
  workflowBundlePath?: string;
  /** Node agent backend (default sim). */
  backend?: 'sim' | 'qemu';
  /** Extra environment for the workers (e.g. GANETI_TEMPORAL_QEMU_KERNEL). */
  env?: NodeJS.ProcessEnv;
}

/** The dev server, the orchestrator and the node agents of one cluster, as separate processes. */
export class Stack {
  server: Proc | undefined;
  orchestrator: Proc | undefined;
  readonly agents = new Map<string, Proc>();
  /** Every process ever started (killed at the end whatever happened). */
  private readonly all: Proc[] = [];
  port = 0;
  private client: Client | undefined;

  constructor(readonly o: StackOptions) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get logDir(): string {
    return join(this.o.home, 'logs');
  }

  private track(p: Proc): Proc {
    this.all.push(p);
    return p;
  }

  private workerEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      ...this.o.env,
      GANETI_TEMPORAL_HOME: this.o.home,
      TEMPORAL_ADDRESS: this.address,
      TEMPORAL_NAMESPACE: 'default',
      GANETI_TEMPORAL_LOG_LEVEL: 'WARN',
      // The planned faults reach the qemu backend's agents too (off on the production path).
      GANETI_TEMPORAL_FAULT_INJECTION: '1',
      ...(this.o.workflowBundlePath ? { GANETI_TEMPORAL_WORKFLOW_BUNDLE: this.o.workflowBundlePath } : {}),
    };
  }

  /** Starts (or restarts, on the same database file and port) the dev server; resolves when it answers. */
  async startServer(timeoutMs = 60_000): Promise<Proc> {
    if (!this.port) this.port = await freePort();
    const dir = join(this.o.home, 'temporal');
    mkdirSync(dir, { recursive: true });
    const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(this.port), '--headless'];
    args.push('--db-filename', join(dir, 'dev-server.db'), '--namespace', 'default', '--log-level', 'error');
    args.push('--http-port', String(await freePort()), '--metrics-port', String(await freePort()));
    for (const sa of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${sa.name}=${TypedSearchAttributes.toMetadataType(sa.type)}`);
    args.push(...DEV_SERVER_DYNAMIC_CONFIG);
    this.server = this.track(spawnLogged('server', this.o.temporalCli, args, process.env, this.logDir));
    await this.waitForServer(this.server, timeoutMs);
    return this.server;
  }

  private async waitForServer(p: Proc, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!p.alive) throw new Error(`the dev server exited:\n${p.log().slice(-2000)}`);
      try {
        const c = await Connection.connect({ address: this.address, connectTimeout: '1s' });
        try {
          await c.workflowService.describeNamespace({ namespace: 'default' });
          return;
        } finally {
          await c.close();
        }
      } catch (e) {
        if (Date.now() > deadline)
          throw new Error(`the dev server does not answer on ${this.address}: ${(e as Error).message}`, { cause: e });
        await sleep(200);
      }
    }
  }

  /** A client of the stack's server (one connection, reconnecting by itself after a server restart). */
  async connect(): Promise<Client> {
    if (!this.client) {
      const connection = await Connection.connect({ address: this.address, connectTimeout: '5s' });
      // Payloads are encrypted with the cluster's key, as the workers and the CLI do.
      this.client = new Client({ connection, namespace: 'default', dataConverter: clusterDataConverter(this.o.home) });
    }
    return this.client;
  }

  private worker(name: string, args: string[]): Proc {
    return this.track(spawnLogged(name, process.execPath, ['--import', 'tsx', MAIN, ...args], this.workerEnv(), this.logDir));
  }

  /** Starts (or restarts) the orchestrator; resolves when its worker is created. */
  async startOrchestrator(timeoutMs = 90_000): Promise<Proc> {
    const p = this.worker('orchestrator', ['orchestrator']);
    this.orchestrator = p;
    await p.waitForLog('] orchestrator for cluster', timeoutMs);
    return p;
  }

  /** Starts (or restarts) a node's agent; resolves when its worker is created. */
  async startAgent(node: string, timeoutMs = 60_000): Promise<Proc> {
    const p = this.worker(`agent-${node}`, ['node-agent', '--node', node, '--backend', this.o.backend ?? 'sim']);
    this.agents.set(node, p);
    await p.waitForLog(`] node agent for ${node}`, timeoutMs);
    return p;
  }

  /** Server, orchestrator and one agent per node, the workers started in parallel. */
  async startAll(nodes: string[]): Promise<void> {
    // The payload key exists before any worker starts (an agent refuses to run without it).
    ensureKeyFile(keyFilePath(this.o.home));
    await this.startServer();
    await Promise.all([this.startOrchestrator(), ...nodes.map((n) => this.startAgent(n))]);
  }

  /** The pids of processes started by this stack that are still alive. */
  alivePids(): number[] {
    return this.all.filter((p) => p.alive).map((p) => p.pid);
  }

  /** SIGKILL every process this stack started (workers first, the server last) and close the client. */
  async killAll(): Promise<void> {
    const workers = this.all.filter((p) => p !== this.server && p.alive);
    await Promise.all(workers.map((p) => p.kill()));
    await Promise.all(this.all.map((p) => p.kill()));
    const c = this.client;
    this.client = undefined;
    await c?.connection.close().catch(() => undefined);
  }
}
