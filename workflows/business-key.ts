/**
 * Workflow IDs are part of the contract: an operation on instance X runs only under the ID
 * `instance/X` (domain/naming.ts), which is what keeps two operations on one instance apart (the
 * server refuses a second start under a running ID). A start under any other ID — from the Web UI,
 * `temporal workflow start` or a raw SDK client — is refused before anything runs.
 *
 * Replay safety (docs/versioning.md): the refusal is behind `patched()`, called only for a run whose
 * ID is wrong, so a correctly named run issues exactly the commands it always did (no marker), and a
 * wrongly named run that started before this check existed replays its old path. (Replay tools that
 * pass another workflow ID, as test/replay does, take the same old path for every history without
 * the marker.)
 */
import { patched, workflowInfo } from '@temporalio/workflow';
import { OpFailure } from '../domain/errors.js';
import { workflowIdFor } from '../domain/naming.js';
import { opFailure, type Operation } from './operation.js';

const REFUSE_FOREIGN_WORKFLOW_ID = 'refuse-foreign-workflow-id';

/** Fails the operation at once, changing nothing, unless the run's ID is `instance/<instance>`. */
export function requireBusinessKey(op: Operation, instance: string): void {
  const id = workflowInfo().workflowId;
  const expected = workflowIdFor(instance);
  if (id === expected || !patched(REFUSE_FOREIGN_WORKFLOW_ID)) return;
  op.finish('failed');
  throw opFailure({
    type: OpFailure.WrongWorkflowId,
    message:
      `refusing to run under the workflow ID ${JSON.stringify(id)}: an operation on instance ${instance} runs only as ` +
      `${JSON.stringify(expected)} (one operation per instance); nothing was changed`,
  });
}
