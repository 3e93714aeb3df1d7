/** Running an operation from the command line: start it, then return at once (--submit) or follow it. */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { OperationResult } from '../../domain/ops.js';
import { temporalSettings, webUiUrl } from '../../connection/settings.js';
import { OperationError, operationResult, type StartOptions } from '../api.js';
import { follow } from '../follow.js';
import { client, readConfig } from './context.js';
import { print, printJson } from './output.js';

export interface OpFlags {
  submit?: boolean;
  json?: boolean;
}

export type Starter<I> = (c: Client, input: I, opts: StartOptions) => Promise<WorkflowHandle & { firstExecutionRunId: string }>;

/** Starts an operation, then either returns at once (--submit) or follows it to its end. */
export async function runOperation<I>(start: Starter<I>, input: I, flags: OpFlags): Promise<void> {
  const cfg = await readConfig();
  const c = await client();
  const handle = await start(c, input, { cluster: cfg.cluster.name, snapshot: cfg });
  const ui = webUiUrl(temporalSettings(), handle.workflowId, handle.firstExecutionRunId);
  if (flags.submit) {
    if (flags.json) printJson({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId, ...(ui ? { webUi: ui } : {}) });
    else print(`Submitted: workflow ${handle.workflowId} (run ${handle.firstExecutionRunId})${ui ? `\nWeb UI: ${ui}` : ''}`);
    return;
  }
  await followToEnd(handle, flags, ui);
}

/** Follows an operation to its end: feedback (and a progress bar on a TTY), then the result or error. */
export async function followToEnd(handle: WorkflowHandle, flags: { json?: boolean }, ui: string | null): Promise<void> {
  if (!flags.json && ui) process.stderr.write(`Web UI: ${ui}\n`);
  const f = flags.json ? null : follow(handle, { bar: !!process.stdout.isTTY, write: print });
  try {
    const r = await operationResult(handle);
    if (f) {
      await f.stop();
      f.flush(r.feedback);
    }
    if (flags.json) printJson(resultJson(r));
  } catch (e) {
    if (f) {
      await f.stop();
      if (e instanceof OperationError) f.flush(e.feedback);
    }
    throw e;
  }
}

function resultJson(r: OperationResult) {
  return {
    outcome: r.outcome,
    instance: r.instance,
    sourceNode: r.sourceNode,
    targetNode: r.targetNode,
    feedback: r.feedback,
    ...(r.plan ? { plan: r.plan } : {}),
  };
}
