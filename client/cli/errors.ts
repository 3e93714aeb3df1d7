/**
 * The CLI's errors and exit codes. An error's exit code and the `type` printed with it come from
 * its class (and, for the port and SDK errors, its kind or gRPC status), never from its message.
 */
import { CommanderError } from 'commander';
import { isGrpcServiceError, ServiceError } from '@temporalio/client';
import { PayloadKeyError } from '../../connection/codec.js';
import { ConnectionSettingsError as SettingsError } from '../../connection/settings.js';
import { InjectRefusedError } from '../../adapters/sim/cluster.js';
import { ConfigError } from '../../domain/ports.js';
import { ActivityFailure } from '../../domain/errors.js';
import { InstanceBusyError, OperationError, PrereqFailedError, WrongWorkflowIdError } from '../api.js';
import { AbortRefusedError, ForceCompleteRefusedError } from '../jobs.js';
import { NodeBusyError } from '../node-api.js';

/**
 * The one exit-code table (docs/cli.md, "Errors and exit codes"):
 * 0 success; 1 the operation failed while executing (or was cancelled/terminated, or the operator
 * answered no); 2 usage error (also a value out of bounds, or a confirmation needed without a
 * terminal); 3 prerequisites not met, nothing changed (also input the operation schema refuses, and an
 * operation started under a foreign workflow ID); 4 refused, the instance (or, for `sim reset`, the
 * cluster) is busy; 5 environment error (no cluster configuration, Temporal unreachable, unusable
 * connection settings or TLS files, credentials refused, no usable payload key file); 6 request
 * refused (an abort after the point of no return, or of a finished operation).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, prereq: 3, busy: 4, environment: 5, refused: 6 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error of the CLI itself; `type` is what it prints as the error type. */
export abstract class CliError extends Error {
  abstract readonly type: string;
}
/** The command line asks for something impossible (besides what commander itself rejects). */
export class UsageError extends CliError {
  readonly type = 'UsageError';
}
/** No cluster configuration or simulated hardware in the data directory. */
export class NoClusterError extends CliError {
  readonly type = 'NoCluster';
}
/** The Temporal server cannot be reached. */
export class UnreachableError extends CliError {
  readonly type = 'Unreachable';
}
/**
 * The connection cannot be made as configured: `ConnectionSettings` (an unknown profile, an unreadable
 * certificate, key or CA file, a certificate without its key), `Unauthenticated` (the server or its
 * proxy refused the API key or client certificate), `PayloadKey` (the payload key file is missing,
 * readable by others, malformed, or lacks the key a payload was encrypted with).
 */
export class ConnectionError extends CliError {
  constructor(
    readonly type: 'ConnectionSettings' | 'Unauthenticated' | 'PayloadKey',
    message: string,
  ) {
    super(message);
  }
}
/** The Temporal connection settings (profile, TLS files, API key, address) cannot be used. */
export class ConnectionSettingsError extends ConnectionError {
  constructor(message: string) {
    super('ConnectionSettings', message);
  }
}
/** No operation (workflow) with this ID. */
export class NoSuchOperationError extends CliError {
  readonly type = 'NotFound';
}
/** Operations run on the cluster, so a command that would pull the ground from under them refuses. */
export class ClusterBusyError extends CliError {
  readonly type = 'ClusterBusy';
}

/** Commander's codes for a requested help or version display: not errors. */
const COMMANDER_OK_CODES: ReadonlySet<string> = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version']);

/** The gRPC status of a server that does not answer (connection refused or lost). */
const GRPC_UNAVAILABLE = 14;
/** The gRPC statuses of refused credentials (UNAUTHENTICATED, PERMISSION_DENIED). */
const GRPC_REFUSED: ReadonlySet<number> = new Set([16, 7]);

/** The gRPC status code of an SDK error, if it is (or wraps) a gRPC error. */
export function grpcCode(e: unknown): number | undefined {
  const grpc = e instanceof ServiceError ? e.cause : e;
  return isGrpcServiceError(grpc) ? grpc.code : undefined;
}

const isUnreachable = (e: unknown): boolean => grpcCode(e) === GRPC_UNAVAILABLE;
export const isRefusedCredentials = (e: unknown): boolean => GRPC_REFUSED.has(grpcCode(e) ?? -1);

export interface ExitReport {
  code: ExitCode;
  /** The error type printed (`error.type` with --json). */
  type: string;
  message: string;
  /** Ganeti's prerequisite error code, when there is one (`error.code` with --json). */
  codeName?: string;
}

const report = (code: ExitCode, type: string, e: Error): ExitReport => ({ code, type, message: e.message });

/** The exit code of an error, by its type. */
export function exitCodeFor(e: unknown): ExitReport {
  if (e instanceof CommanderError) return report(COMMANDER_OK_CODES.has(e.code) ? EXIT.ok : EXIT.usage, 'UsageError', e);
  if (e instanceof UsageError) return report(EXIT.usage, e.type, e);
  if (e instanceof NoClusterError || e instanceof UnreachableError || e instanceof ConnectionError)
    return report(EXIT.environment, e.type, e);
  if (e instanceof SettingsError) return report(EXIT.environment, 'ConnectionSettings', e);
  if (e instanceof PayloadKeyError) return report(EXIT.environment, 'PayloadKey', e);
  if (e instanceof ClusterBusyError) return report(EXIT.busy, e.type, e);
  if (e instanceof NoSuchOperationError) return report(EXIT.prereq, e.type, e);
  // Any other error of the CLI itself (NotConfirmed: the operator answered no).
  if (e instanceof CliError) return report(EXIT.failed, e.type, e);
  if (e instanceof AbortRefusedError || e instanceof ForceCompleteRefusedError) return report(EXIT.refused, e.type, e);
  if (e instanceof InstanceBusyError || e instanceof NodeBusyError) return report(EXIT.busy, e.type, e);
  if (e instanceof PrereqFailedError) return { ...report(EXIT.prereq, e.type, e), ...(e.code ? { codeName: e.code } : {}) };
  if (e instanceof WrongWorkflowIdError) return report(EXIT.prereq, e.type, e);
  if (e instanceof OperationError) return report(EXIT.failed, e.type, e);
  if (e instanceof ConfigError) {
    if (e.kind === 'not-found') return report(EXIT.prereq, 'PrereqFailed', e);
    if (e.kind === 'invalid') return report(EXIT.usage, 'UsageError', e);
    return report(EXIT.failed, ActivityFailure.ConfigConflict, e);
  }
  if (e instanceof InjectRefusedError) return report(EXIT.usage, 'UsageError', e);
  if (isUnreachable(e)) return report(EXIT.environment, 'Unreachable', e as Error);
  if (isRefusedCredentials(e)) return report(EXIT.environment, 'Unauthenticated', e as Error);
  return { code: EXIT.failed, type: 'Error', message: e instanceof Error ? e.message : String(e) };
}
