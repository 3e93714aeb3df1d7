/**
 * A throw-away PostgreSQL server for tests: Debian's binaries (on PATH or under
 * /usr/lib/postgresql/<version>/bin), a cluster in a temporary directory, listening on a free
 * loopback port (no Unix socket). PostgreSQL refuses to run as root: as root, the directory belongs
 * to the `postgres` user and initdb and the server run as that user (runuser).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { freePort } from '../../adapters/common/net.js';

export interface PostgresServer {
  /** postgres://…/postgres as the superuser `test`. */
  url: string;
  /** A new, empty database; its URL. */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/** The directory of Debian's PostgreSQL binaries, or null when none is installed. */
export function postgresBinDir(): string | null {
  try {
    const initdb = execFileSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).trim();
    if (initdb) return join(initdb, '..');
  } catch {
    // not on PATH
  }
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  return null;
}

let databases = 0;

export async function startPostgres(timeoutMs = 60_000): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL binaries (initdb): install the postgresql package');
  const dir = mkdtempSync(join(tmpdir(), 'ganeti-temporal-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  let uid: number | undefined;
  if (asRoot) {
    uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  const run = (cmd: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, 'test\n', { mode: 0o600 });
  if (uid !== undefined) chownSync(pwfile, uid, -1);
  const [c1, a1] = run(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'test',
    '--pwfile',
    pwfile,
    '-A',
    'scram-sha-256',
    '--no-sync',
    '-E',
    'UTF8',
  ]);
  execFileSync(c1, a1, { stdio: 'pipe', timeout: timeoutMs, cwd: dir });
  const port = await freePort();
  const [c2, a2] = run(join(bin, 'postgres'), [
    '-D',
    data,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    '-c',
    'fsync=off',
    '-c',
    'max_connections=100',
  ]);
  const child: ChildProcess = spawn(c2, a2, { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir });
  let log = '';
  child.stderr!.on('data', (d) => (log = (log + String(d)).slice(-4000)));
  const base = `postgres://test:test@127.0.0.1:${port}`;
  const url = `${base}/postgres`;
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT'); // fast shutdown
      await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.end();
      break;
    } catch (e) {
      await c.end().catch(() => undefined);
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`PostgreSQL did not start: ${(e as Error).message}\n${log}`, { cause: e });
      }
      await sleep(100);
    }
  }
  return {
    url,
    async createDatabase() {
      const name = `t${process.pid}_${++databases}`;
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return `${base}/${name}`;
    },
    stop,
  };
}
