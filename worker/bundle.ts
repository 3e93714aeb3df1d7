/** The workflow bundle (webpack + swc over workflows/index.ts), built once per process. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type WorkerOptions, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

/** Running the compiled code of dist/ (`npm run build`), not the TypeScript sources (tsx, vitest). */
export const COMPILED = import.meta.url.endsWith('.js');

/** The workflows' entry module: the TypeScript source, or its compiled twin in dist/. */
export const WORKFLOWS_PATH = fileURLToPath(new URL(`../workflows/index.${COMPILED ? 'js' : 'ts'}`, import.meta.url));

/** Where `npm run build` puts the prebuilt bundle: dist/workflow-bundle.js, next to the compiled code. */
export const PREBUILT_BUNDLE = fileURLToPath(new URL('../workflow-bundle.js', import.meta.url));

let cached: Promise<WorkflowBundleWithSourceMap> | undefined;

export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  cached ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  return cached;
}

/**
 * The bundle a worker process runs, in this order: the file GANETI_TEMPORAL_WORKFLOW_BUNDLE names
 * (the `code` of `bundleWorkflowCode`, built from this same source); the compiled code's prebuilt
 * dist/workflow-bundle.js (`npm run build`); else one built now (webpack, several seconds). A
 * prebuilt bundle has a restarted orchestrator polling in about a second instead of after a build.
 */
export async function workerWorkflowBundle(env: NodeJS.ProcessEnv = process.env): Promise<NonNullable<WorkerOptions['workflowBundle']>> {
  const prebuilt = env.GANETI_TEMPORAL_WORKFLOW_BUNDLE || (COMPILED && existsSync(PREBUILT_BUNDLE) ? PREBUILT_BUNDLE : undefined);
  return prebuilt ? { codePath: prebuilt } : workflowBundle();
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop };
