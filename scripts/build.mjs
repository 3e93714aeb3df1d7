#!/usr/bin/env node
/**
 * `npm run build`: the production build in dist/, run by plain Node (no TypeScript runtime needed
 * to run what it makes):
 *   1. tsc (TypeScript 7, tsconfig.build.json) compiles the runtime code to ESM JavaScript with source
 *      maps: domain, adapters, connection, workflows, activities, worker, client, scripts/replay
 *      (not test/, bench/, chaos/). Imports resolve node_modules/ of the project, as the sources do.
 *   2. The files the runtime reads besides code: adapters/qemu/guest/ (the heartbeat guest's
 *      assembler source, built into the qemu backend's default kernel on first use).
 *   3. The workflow bundle (webpack over workflows/index.ts, as the workers build it at start)
 *      into dist/workflow-bundle.js; the compiled workers load it instead of bundling (worker/bundle.ts).
 *   4. dist/BUILD.json: the package version and when it was built.
 * Everything is made in a temporary directory beside dist/ and renamed into place at the end, so a
 * failed or interrupted build leaves the previous dist/ as it was. `--out-dir <dir>` builds elsewhere
 * (a directory inside the project, so that its imports find node_modules/).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outFlag = process.argv.indexOf('--out-dir');
const out = outFlag > 0 && process.argv[outFlag + 1] ? resolve(process.argv[outFlag + 1]) : join(root, 'dist');
const tmp = `${out}.tmp-${process.pid}`;
const say = (m) => console.log(`[build] ${m}`);

function fail(message) {
  rmSync(tmp, { recursive: true, force: true });
  console.error(`[build] ${message}`);
  process.exit(1);
}

rmSync(tmp, { recursive: true, force: true });
const started = Date.now();
say(`tsc -p tsconfig.build.json → ${out}`);
const tsc = spawnSync(
  process.execPath,
  [join(root, 'node_modules/typescript-native/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', tmp],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
if (tsc.status !== 0) fail(`tsc failed (exit ${tsc.status ?? tsc.signal})`);

cpSync(join(root, 'adapters/qemu/guest'), join(tmp, 'adapters/qemu/guest'), { recursive: true });

say('bundling the workflows');
const noop = () => undefined;
try {
  const bundle = await bundleWorkflowCode({
    workflowsPath: join(root, 'workflows/index.ts'),
    logger: { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop },
  });
  writeFileSync(join(tmp, 'workflow-bundle.js'), bundle.code);
} catch (e) {
  fail(`bundling the workflows failed: ${e instanceof Error ? e.message : String(e)}`);
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
writeFileSync(
  join(tmp, 'BUILD.json'),
  `${JSON.stringify({ name: pkg.name, version: pkg.version, builtAt: new Date().toISOString() }, null, 2)}\n`,
);

if (existsSync(out)) rmSync(out, { recursive: true, force: true });
renameSync(tmp, out);
say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s: node ${join(out, 'worker/main.js')} orchestrator|node-agent …`);
