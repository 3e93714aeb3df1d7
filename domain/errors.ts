/**
 * The error taxonomy, as data. Workflows and activities turn these into `ApplicationFailure`s with the
 * `type` strings below; nothing relies on class names.
 */

/** Ganeti's OpPrereqError codes (lib/errors.py ECODE_*), spelled as Ganeti prints them. */
export const ECODES = [
  'wrong_input',
  'wrong_state',
  'insufficient_resources',
  'environment_error',
  'unknown_entity',
  'resource_not_unique',
] as const;
export type ECode = (typeof ECODES)[number];

/** Failure `type`s of whole operations (workflow failures). */
export const OpFailure = {
  /** Ganeti OpPrereqError: nothing was changed. details[0] = { code }. */
  PrereqFailed: 'PrereqFailed',
  /** Ganeti OpExecError: failed while executing; the message says what state was left. */
  ExecutionFailed: 'ExecutionFailed',
  /** Ganeti ConfigurationError: the configuration itself is inconsistent. */
  ConfigurationError: 'ConfigurationError',
  /** A pre-hook vetoed the operation (Ganeti HooksAbort). */
  HooksFailed: 'HooksFailed',
  /** The operator aborted the operation before its point of no return (abort + revert ran). */
  Aborted: 'Aborted',
  /**
   * The workflow was started under another ID than its business key (`instance/<name>`, see
   * domain/naming.ts): refused before anything ran, since only that ID keeps two operations on one
   * instance apart. Nothing was changed.
   */
  WrongWorkflowId: 'WrongWorkflowId',
} as const;
export type OpFailureType = (typeof OpFailure)[keyof typeof OpFailure];

/** Failure `type`s raised by activities. */
export const ActivityFailure = {
  /** The node executed the RPC and reported a failure (Ganeti's fail_msg). Not retried. */
  NodeRpcFailed: 'NodeRpcFailed',
  /** The RPC did not get through or the node was momentarily unable to answer. Retried. */
  NodeRpcTransient: 'NodeRpcTransient',
  /** A compare-and-set on the configuration found another value than expected. Not retried. */
  ConfigConflict: 'ConfigConflict',
  /** The live hypervisor reported the migration failed or cancelled. Not retried. */
  MigrationFailed: 'MigrationFailed',
  /**
   * The memory transfer hit its policy's completion or progress timeout (domain/policy.ts); it still
   * runs, the workflow applies the policy's `onTimeout`. Not retried.
   */
  MigrationTimedOut: 'MigrationTimedOut',
  /**
   * A node agent refused an RPC's arguments (domain/rpc-schemas.ts): a name, path, hook phase,
   * environment key or number out of bounds. Nothing ran on the node. Not retried.
   */
  InvalidRpcInput: 'InvalidRpcInput',
} as const;

export const NON_RETRYABLE_ACTIVITY_FAILURES: string[] = [
  ActivityFailure.NodeRpcFailed,
  ActivityFailure.ConfigConflict,
  ActivityFailure.MigrationFailed,
  ActivityFailure.MigrationTimedOut,
  ActivityFailure.InvalidRpcInput,
];

/** An operation-level error as plain data (what prerequisite checks return instead of throwing). */
export interface OpError {
  type: OpFailureType;
  message: string;
  /** Only for PrereqFailed; Ganeti raises a few prerequisite errors without a code. */
  code?: ECode;
}

export const prereqError = (message: string, code?: ECode): OpError =>
  code ? { type: OpFailure.PrereqFailed, message, code } : { type: OpFailure.PrereqFailed, message };
export const execError = (message: string): OpError => ({ type: OpFailure.ExecutionFailed, message });

/** How Ganeti's CLI prints an operation error. */
export function formatOpError(err: { type: string; message: string; code?: string | undefined }): string {
  if (err.type === OpFailure.PrereqFailed) {
    return err.code
      ? `Failure: prerequisites not met for this operation: error type: ${err.code}, error details: ${err.message}`
      : `Failure: prerequisites not met for this operation: ${err.message}`;
  }
  if (err.type === OpFailure.ExecutionFailed) return `Failure: command execution error: ${err.message}`;
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent: a hooks failure prints as the fallback does (kept to show Ganeti's HooksAbort format)
  if (err.type === OpFailure.HooksFailed) return `Failure: ${err.message}`;
  return `Failure: ${err.message}`;
}
