/**
 * The CLI's exit codes come from an error's type (its class, a port error's kind, a gRPC status),
 * never from its message: each kind of error maps to its documented code and printed type. A few
 * commands that fail without a server run in-process against a seeded data directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { CommanderError } from 'commander';
import { ServiceError } from '@temporalio/client';
import { InjectRefusedError } from '../../adapters/sim/cluster.js';
import { ConfigError, StoreBusyError } from '../../domain/ports.js';
import { ExecutionFailedError, InstanceBusyError, OperationError, PrereqFailedError } from '../../client/api.js';
import { AbortRefusedError } from '../../client/jobs.js';
import { main } from '../../client/cli.js';
import { EXIT, exitCodeFor, NoClusterError, NoSuchOperationError, UnreachableError, UsageError } from '../../client/cli/errors.js';

/** What @grpc/grpc-js rejects a call with when the server does not answer. */
function grpcError(code: number, message: string): Error {
  return Object.assign(new Error(message), { code, details: message, metadata: {} });
}

describe('exit code by error type', () => {
  test('the documented exit-code table', () => {
    expect(EXIT).toEqual({ ok: 0, failed: 1, usage: 2, prereq: 3, busy: 4, environment: 5, refused: 6 });
  });

  test.each([
    ['help displayed', new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), EXIT.ok],
    ['help command', new CommanderError(0, 'commander.help', '(outputHelp)'), EXIT.ok],
    ['version', new CommanderError(0, 'commander.version', '0.1.0'), EXIT.ok],
    ['missing argument', new CommanderError(1, 'commander.missingArgument', "error: missing required argument 'name'"), EXIT.usage],
    ['invalid choice', new CommanderError(1, 'commander.invalidArgument', 'error: option ... is invalid'), EXIT.usage],
    ['unknown command', new CommanderError(1, 'commander.unknownCommand', "error: unknown command 'x'"), EXIT.usage],
  ])('commander: %s', (_name, e, code) => {
    expect(exitCodeFor(e).code).toBe(code);
  });

  test.each([
    ['UsageError', new UsageError('nothing to change'), EXIT.usage, 'UsageError'],
    ['NoClusterError', new NoClusterError('no cluster configuration in /x'), EXIT.environment, 'NoCluster'],
    ['UnreachableError', new UnreachableError('cannot reach the Temporal server at h:1'), EXIT.environment, 'Unreachable'],
    ['NoSuchOperationError', new NoSuchOperationError('no operation instance/x'), EXIT.prereq, 'NotFound'],
    ['AbortRefusedError', new AbortRefusedError('past the point of no return'), EXIT.refused, 'AbortRefused'],
    ['InstanceBusyError', new InstanceBusyError('web1', { workflowId: 'instance/web1' }), EXIT.busy, 'InstanceBusy'],
    ['PrereqFailedError', new PrereqFailedError("Instance 'x' not known"), EXIT.prereq, 'PrereqFailed'],
    ['ExecutionFailedError', new ExecutionFailedError('disks degraded'), EXIT.failed, 'ExecutionFailed'],
    ['ExecutionFailedError (hooks)', new ExecutionFailedError('hook vetoed', [], 'HooksFailed'), EXIT.failed, 'HooksFailed'],
    ['OperationError (aborted)', new OperationError('Aborted', 'aborted by the operator'), EXIT.failed, 'Aborted'],
    ['OperationError (cancelled)', new OperationError('Cancelled', 'the operation was cancelled'), EXIT.failed, 'Cancelled'],
    ['OperationError (terminated)', new OperationError('Terminated', 'terminated'), EXIT.failed, 'Terminated'],
    ['ConfigError not-found', new ConfigError("Node 'node9' not known", 'not-found'), EXIT.prereq, 'PrereqFailed'],
    ['ConfigError invalid', new ConfigError('The master node node1 cannot be marked offline', 'invalid'), EXIT.usage, 'UsageError'],
    ['ConfigError conflict', new ConfigError('primary is node2, expected node1', 'conflict'), EXIT.failed, 'ConfigConflict'],
    ['InjectRefusedError', new InjectRefusedError('node node1 holds no disk of files1'), EXIT.usage, 'UsageError'],
    ['gRPC UNAVAILABLE', grpcError(14, '14 UNAVAILABLE: No connection established'), EXIT.environment, 'Unreachable'],
    ['ServiceError over UNAVAILABLE', new ServiceError('Failed', { cause: grpcError(14, 'down') }), EXIT.environment, 'Unreachable'],
    ['gRPC NOT_FOUND', grpcError(5, '5 NOT_FOUND: namespace not found'), EXIT.failed, 'Error'],
    ['StoreBusyError', new StoreBusyError('timed out waiting for the lock'), EXIT.failed, 'Error'],
    ['any other Error', new Error('boom'), EXIT.failed, 'Error'],
  ])('%s', (_name, e, code, type) => {
    const r = exitCodeFor(e);
    expect({ code: r.code, type: r.type, message: r.message }).toEqual({ code, type, message: e.message });
  });

  test('a prerequisite failure carries its Ganeti error code; one without a code has none', () => {
    expect(exitCodeFor(new PrereqFailedError('bad input', 'wrong_input'))).toEqual({
      code: EXIT.prereq,
      type: 'PrereqFailed',
      message: 'bad input',
      codeName: 'wrong_input',
    });
    expect(exitCodeFor(new PrereqFailedError('bad input'))).not.toHaveProperty('codeName');
  });

  test('the message plays no part: a plain Error reading like a known failure still exits 1', () => {
    for (const message of ["Node 'node9' not known", 'instance web1 is busy', 'cannot reach the Temporal server']) {
      expect(exitCodeFor(new Error(message))).toEqual({ code: EXIT.failed, type: 'Error', message });
    }
  });

  test('a thrown non-Error exits 1 with its text', () => {
    expect(exitCodeFor('oops')).toEqual({ code: EXIT.failed, type: 'Error', message: 'oops' });
  });
});

describe('server-free commands exit by error type', () => {
  let home: string;
  let out: string[];
  const saved = process.env.GANETI_TEMPORAL_HOME;
  const run = async (...args: string[]) => {
    out = [];
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (out.push(String(s)), true));
    try {
      return await main(['node', 'ganeti-temporal', ...args]);
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
  };
  const jsonError = () => (JSON.parse(out.join('')) as { error: unknown }).error;

  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'cli-exit-'));
    process.env.GANETI_TEMPORAL_HOME = home;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.GANETI_TEMPORAL_HOME;
    else process.env.GANETI_TEMPORAL_HOME = saved;
    rmSync(home, { recursive: true, force: true });
  });

  test('no cluster configuration exits 5 (NoCluster)', async () => {
    expect(await run('instance', 'list', '--json')).toBe(EXIT.environment);
    expect(jsonError()).toMatchObject({ type: 'NoCluster' });
  });

  test('node and sim commands: unknown objects exit 3, impossible requests exit 2', async () => {
    expect(await run('sim', 'reset')).toBe(EXIT.ok);
    expect(await run('node', 'modify', 'node9', '--drained', 'yes', '--json')).toBe(EXIT.prereq);
    expect(jsonError()).toEqual({ type: 'PrereqFailed', message: "Node 'node9' not known" });
    expect(await run('node', 'modify', 'node1', '--offline', 'yes', '--json')).toBe(EXIT.usage);
    expect(jsonError()).toEqual({ type: 'UsageError', message: 'The master node node1 cannot be marked offline' });
    expect(await run('node', 'modify', 'node2')).toBe(EXIT.usage);
    expect(out.join('')).toBe('Failure: nothing to change: give --offline and/or --drained\n');
    expect(await run('instance', 'info', 'nosuch')).toBe(EXIT.prereq);
    expect(out.join('')).toBe("Failure: prerequisites not met for this operation: Instance 'nosuch' not known\n");
    expect(await run('sim', 'inject', 'files1', '--node', 'node1', '--state', 'standalone')).toBe(EXIT.usage);
    expect(await run('sim', 'power', 'node2', 'sideways')).toBe(EXIT.usage);
    expect(await run('instance', 'frobnicate')).toBe(EXIT.usage);
    expect(await run('--help')).toBe(EXIT.ok);
  });
});
