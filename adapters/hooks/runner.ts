/**
 * Runs one phase of hooks on this node (Ganeti's HooksRunner, docs/behaviour.md §9.3 "Scripts"): the
 * executable entries of `<hooksDir>/<path>-<phase>.d/` whose names match ^[a-zA-Z0-9_-]+$, sorted by
 * name, one after another, with no arguments, stdin closed, stdout and stderr captured together, the
 * given environment plus PATH and GANETI_DATA_DIR and nothing else. Unlike Ganeti, each script has a
 * timeout (default 300 s): then it is sent SIGTERM, SIGKILL 5 s later, and counts as failed.
 *
 * Defence in depth behind the node agent's argument check (domain/rpc-schemas.ts): only the
 * directories of the known hook paths and phases are ever read (anything else is refused), and of
 * the environment only the Ganeti hook keys (HOOK_ENV_KEY_RE) are passed on, so `LD_PRELOAD`,
 * `PATH` or `BASH_ENV` given by a caller never reach a script.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NodeRpcError, type HookRunner } from '../../domain/ports.js';
import {
  HOOK_ENV_KEY_RE,
  HOOK_NAME_RE,
  HOOK_PATH_ENV,
  HOOK_PATHS,
  HOOK_PHASES,
  type HookPath,
  type HookPhase,
  type HookScriptResult,
} from '../../domain/hook-env.js';

export const DEFAULT_HOOK_TIMEOUT_SEC = 300;

/** The Ganeti hook keys of `env`, plus PATH and GANETI_DATA_DIR set by the node: nothing else. */
export function hookScriptEnv(env: Record<string, string>, dataDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (HOOK_ENV_KEY_RE.test(k) && typeof v === 'string' && !v.includes('\0')) out[k] = v;
  return { ...out, PATH: HOOK_PATH_ENV, GANETI_DATA_DIR: dataDir };
}

function isExecutableFile(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

export class DirectoryHookRunner implements HookRunner {
  constructor(
    readonly hooksDir: string,
    readonly dataDir: string,
  ) {}

  async run(
    path: HookPath,
    phase: HookPhase,
    env: Record<string, string>,
    timeoutSec: number,
    signal?: AbortSignal,
  ): Promise<HookScriptResult[]> {
    if (!(HOOK_PATHS as readonly string[]).includes(path) || !(HOOK_PHASES as readonly string[]).includes(phase)) {
      throw new NodeRpcError(`refusing to run hooks: unknown hooks path or phase ${JSON.stringify(`${path}-${phase}`)}`);
    }
    if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) throw new NodeRpcError(`refusing to run hooks: invalid timeout ${timeoutSec}`);
    const subdir = `${path}-${phase}.d`;
    const dir = join(this.hooksDir, subdir);
    const scriptEnv = hookScriptEnv(env, this.dataDir);
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => !n.startsWith('.'));
    } catch {
      return []; // no directory, no hooks (Ganeti does not create them)
    }
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const results: HookScriptResult[] = [];
    for (const name of names) {
      const file = join(dir, name);
      const script = `${subdir}/${name}`;
      if (!HOOK_NAME_RE.test(name) || !isExecutableFile(file)) {
        results.push({ script, status: 'skip', output: '' });
        continue;
      }
      signal?.throwIfAborted();
      results.push({
        script,
        ...(await this.runOne(file, scriptEnv, timeoutSec, signal)),
      });
    }
    return results;
  }

  private runOne(
    file: string,
    env: Record<string, string>,
    timeoutSec: number,
    signal?: AbortSignal,
  ): Promise<Omit<HookScriptResult, 'script'>> {
    return new Promise((resolve) => {
      let output = '';
      let timedOut = false;
      // Its own process group, so a timeout kills whatever the script started too.
      const child = spawn(file, [], { env, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const signalGroup = (sig: NodeJS.Signals) => {
        try {
          if (child.pid) process.kill(-child.pid, sig);
        } catch {
          // the group is gone already
        }
      };
      const kill = () => {
        signalGroup('SIGTERM');
        setTimeout(() => signalGroup('SIGKILL'), 5000).unref();
      };
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, timeoutSec * 1000);
      signal?.addEventListener('abort', kill, { once: true });
      child.on('error', (e) => {
        clearTimeout(timer);
        resolve({ status: 'fail', output: `${output}${e.message}`.trim() });
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', kill);
        if (timedOut) resolve({ status: 'fail', output: `${output.trim()}\n(timed out after ${timeoutSec} s)`.trim() });
        else if (code === 0) resolve({ status: 'success', output: output.trim() });
        else resolve({ status: 'fail', output: output.trim() });
      });
    });
  }
}
