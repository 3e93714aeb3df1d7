/**
 * A small QMP client over a unix socket: greeting, capabilities negotiation, id-matched replies,
 * events collected on the side.
 *
 * QEMU's `-qmp unix:…,server=on,wait=off` serves one client at a time; a second client connects but
 * gets no greeting until the first one leaves. The driver therefore opens a connection per RPC and
 * closes it (a restarted node agent then never finds the monitor held by its dead predecessor), and
 * a missing greeting is a transient failure, not a hang.
 */
import { connect, type Socket } from 'node:net';

export class QmpError extends Error {
  override readonly name = 'QmpError';
  constructor(
    readonly cls: string,
    readonly desc: string,
    readonly command: string,
  ) {
    super(`${command}: ${desc}`);
  }
}

/** The socket could not be reached, or QEMU did not answer in time. */
export class QmpUnavailable extends Error {
  override readonly name = 'QmpUnavailable';
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; command: string; timer: NodeJS.Timeout };

export interface QmpOptions {
  /** Connect + greeting + capabilities. */
  connectTimeoutMs?: number;
  /** Called with every command sent and its outcome (the driver's per-instance journal). */
  journal?: (line: string) => void;
}

export class QmpClient {
  readonly events: QmpEvent[] = [];
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closed: Error | null = null;
  private greeting: ((v: unknown) => void) | null = null;
  private eventWaiters: Array<() => void> = [];

  private constructor(
    private readonly sock: Socket,
    private readonly journal: (line: string) => void,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    sock.on('close', () => this.fail(new QmpUnavailable('QMP connection closed')));
    sock.on('error', (e) => this.fail(new QmpUnavailable(`QMP socket error: ${e.message}`)));
  }

  static async connect(path: string, opts: QmpOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.connectTimeoutMs ?? 5000;
    const sock = connect({ path });
    const client = new QmpClient(sock, opts.journal ?? (() => undefined));
    const timer = setTimeout(
      () => sock.destroy(new Error(`no QMP greeting within ${timeoutMs} ms (monitor busy or QEMU hung)`)),
      timeoutMs,
    );
    try {
      await new Promise<unknown>((resolve, reject) => {
        client.greeting = resolve;
        sock.once('error', reject);
        sock.once('close', () => reject(new Error('QMP connection closed before the greeting')));
      });
      await client.execute('qmp_capabilities', undefined, timeoutMs);
      return client;
    } catch (e) {
      sock.destroy();
      throw e instanceof QmpError ? e : new QmpUnavailable(`cannot talk to QMP at ${path}: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in msg) {
        this.greeting?.(msg);
        this.greeting = null;
      } else if ('event' in msg) {
        this.events.push(msg as unknown as QmpEvent);
        for (const w of this.eventWaiters.splice(0)) w();
      } else if ('id' in msg) {
        const p = this.pending.get(String(msg.id));
        if (!p) continue;
        this.pending.delete(String(msg.id));
        clearTimeout(p.timer);
        if ('error' in msg) {
          const err = msg.error as { class?: string; desc?: string };
          this.journal(`<- ${p.command} error ${err.class}: ${err.desc}`);
          p.reject(new QmpError(err.class ?? 'GenericError', err.desc ?? 'unknown error', p.command));
        } else {
          p.resolve(msg.return);
        }
      }
    }
  }

  private fail(e: Error): void {
    if (this.closed) return;
    this.closed = e;
    for (const w of this.eventWaiters.splice(0)) w();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
  }

  /** Runs one command; QMP errors reject with QmpError, a lost connection with QmpUnavailable. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
    if (this.closed) return Promise.reject(this.closed);
    const id = String(this.nextId++);
    // Read-only polls and the per-connection handshake would flood the journal; everything that
    // changes state is written down.
    if (!command.startsWith('query-') && command !== 'human-monitor-command' && command !== 'qmp_capabilities') {
      this.journal(`-> ${command}${args ? ` ${JSON.stringify(args)}` : ''}`);
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpUnavailable(`QMP command ${command} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, command, timer });
      this.sock.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    });
  }

  /**
   * Resolves with the first event (already received on this connection, or arriving within
   * `timeoutMs`) that satisfies `pred`; null on timeout, a closed connection or an aborted `signal`.
   */
  async waitEvent(pred: (e: QmpEvent) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<QmpEvent | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0 || this.closed || signal?.aborted) return null;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, left);
        signal?.addEventListener('abort', done);
        this.eventWaiters.push(done);
      });
    }
  }

  /** HMP through QMP (e.g. `xp /2wx 0x1f0000`). */
  hmp(commandLine: string): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine });
  }

  close(): void {
    this.fail(new QmpUnavailable('QMP connection closed by the client'));
    this.sock.end();
    this.sock.destroy();
  }
}

/** Connects, runs `fn`, and always closes. */
export async function withQmp<T>(path: string, fn: (q: QmpClient) => Promise<T>, opts: QmpOptions = {}): Promise<T> {
  const q = await QmpClient.connect(path, opts);
  try {
    return await fn(q);
  } finally {
    q.close();
  }
}
