#!/usr/bin/env node
// Restores lock-file entries for optional, platform-specific packages that the registry in use does
// not serve (e.g. @swc/core's macOS/Windows builds). `npm install` drops them silently and `npm ci`
// then refuses the lock as out of sync. The entries carry os/cpu, so npm skips them on other
// platforms. Run after `npm install` changes the lock: `node scripts/fix-lockfile.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const OS = { darwin: 'darwin', linux: 'linux', win32: 'win32', freebsd: 'freebsd', android: 'android' };
const CPU = ['arm64', 'x64', 'ia32', 'arm', 'ppc64', 's390x', 'riscv64', 'loong64'];

let added = 0;
for (const [key, pkg] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    const target = `node_modules/${dep}`;
    if (lock.packages[target] || lock.packages[`${key}/${target}`]) continue;
    const parts = dep.split('/').pop().split('-');
    const os = parts.find((p) => p in OS);
    const cpu = parts.find((p) => CPU.includes(p) || p === 'arm');
    if (!os || !cpu) continue; // not a platform build: leave it to npm
    lock.packages[target] = {
      version,
      cpu: [cpu],
      license: pkg.license,
      optional: true,
      os: [os],
      ...(pkg.engines ? { engines: pkg.engines } : {}),
    };
    added++;
  }
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`fix-lockfile: added ${added} optional platform entr${added === 1 ? 'y' : 'ies'}`);
