/** Orchestrator activities that act on other running operations (a node operation's children). */
import { ApplicationFailure } from '@temporalio/common';
import type { AbortAnswer, OperationControl } from '../domain/ports.js';

export function createControlActivities({ control }: { control?: OperationControl | undefined }) {
  return {
    /** Sends `abort` to an instance operation; its refusal (past the point of no return) is an answer. */
    abortInstanceOperation: async (req: { workflowId: string; runId: string | null; reason: string }): Promise<AbortAnswer> => {
      if (!control) throw ApplicationFailure.nonRetryable('this orchestrator has no Temporal client to send aborts with', 'NoControl');
      return control.abort(req.workflowId, req.runId, req.reason);
    },
  };
}
