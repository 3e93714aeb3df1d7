/**
 * System packages the tests need (QEMU for the real-hypervisor tests, Chromium for the browser test):
 * found on PATH, or installed from Debian's packages when the test run may do so (root with apt-get),
 * so that `npm ci && npm test` works on a fresh machine. `.ci/run` installs them up front as well.
 */
import { spawnSync } from 'node:child_process';

export function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

let updated = false;

export function ensureCommand(cmd: string, debPackage: string, log: (m: string) => void = console.log): string {
  const found = which(cmd);
  if (found) return found;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || !which('apt-get')) {
    throw new Error(`${cmd} not found; install the Debian package ${debPackage} (apt-get install --no-install-recommends ${debPackage})`);
  }
  log(`installing ${debPackage} (for ${cmd}) …`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!updated) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    updated = true;
  }
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', debPackage], { stdio: 'inherit', env });
  const path = which(cmd);
  if (r.status !== 0 || !path) throw new Error(`could not install ${debPackage} (apt-get exit ${r.status})`);
  return path;
}
