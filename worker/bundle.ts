/** The workflow bundle (webpack + swc over workflows/index.ts), built once per process. */
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type WorkerOptions, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

let cached: Promise<WorkflowBundleWithSourceMap> | undefined;

export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  cached ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  return cached;
}

/**
 * The bundle a worker process runs: a prebuilt file when GANETI_TEMPORAL_WORKFLOW_BUNDLE names one
 * (the `code` of `bundleWorkflowCode`, built from this same source; a restarted orchestrator is then
 * polling in about a second instead of after a webpack build), else built now.
 */
export async function workerWorkflowBundle(env: NodeJS.ProcessEnv = process.env): Promise<NonNullable<WorkerOptions['workflowBundle']>> {
  const prebuilt = env.GANETI_TEMPORAL_WORKFLOW_BUNDLE;
  return prebuilt ? { codePath: prebuilt } : workflowBundle();
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop };
