/**
 * The small pure pieces operators and other components see: workflow IDs and task queues
 * (domain/naming.ts), computed feedback lines (domain/feedback.ts), how an operation error prints
 * (domain/errors.ts) and the hypervisor-version rule (domain/hypervisor.ts).
 */
import { describe, expect, test } from 'vitest';
import {
  ActivityFailure,
  ECODES,
  NON_RETRYABLE_ACTIVITY_FAILURES,
  OpFailure,
  execError,
  formatOpError,
  prereqError,
} from '../../../domain/errors.js';
import { memoryProgressLine, mergeSyncProgress, syncProgressLine } from '../../../domain/feedback.js';
import { hvVersionPairSafe } from '../../../domain/hypervisor.js';
import { ConfigError, NodeRpcError, StoreBusyError, rpcName } from '../../../domain/ports.js';
import {
  cleanupCommand,
  instanceFromWorkflowId,
  nodeFromWorkflowId,
  nodeQueue,
  nodeWorkflowIdFor,
  orchestratorQueue,
  runningCopyRefusal,
  staleCopyRefusal,
  workflowIdFor,
} from '../../../domain/naming.js';

describe('names', () => {
  test('an instance’s workflow ID round-trips, and other workflow IDs name no instance', () => {
    expect(workflowIdFor('web1')).toBe('instance/web1');
    expect(instanceFromWorkflowId(workflowIdFor('web1.example.com'))).toBe('web1.example.com');
    expect(instanceFromWorkflowId('batch/web1')).toBeNull();
    expect(instanceFromWorkflowId('web1')).toBeNull();
    expect(instanceFromWorkflowId('x-instance/web1')).toBeNull();
  });

  test('a node operation’s workflow ID round-trips, and instance IDs name no node', () => {
    expect(nodeWorkflowIdFor('node3')).toBe('node/node3');
    expect(nodeFromWorkflowId(nodeWorkflowIdFor('node3.example.com'))).toBe('node3.example.com');
    expect(nodeFromWorkflowId('instance/node3')).toBeNull();
    expect(nodeFromWorkflowId('node3')).toBeNull();
    expect(nodeFromWorkflowId('x-node/node3')).toBeNull();
  });

  test('task queues are per cluster, and per node for the node agents', () => {
    expect(orchestratorQueue('c1')).toBe('ganeti.c1.orchestrator');
    expect(nodeQueue('c1', 'node2')).toBe('ganeti.c1.node.node2');
  });

  test('the cleanup hint is the CLI command that repairs the instance', () => {
    expect(cleanupCommand('web1')).toBe('ganeti-temporal instance migrate --cleanup web1');
  });
});

describe('feedback lines', () => {
  test('resync progress prints one decimal, memory transfer progress two', () => {
    expect(syncProgressLine(42)).toBe('   - progress: 42.0%');
    expect(syncProgressLine(99.96)).toBe('   - progress: 100.0%');
    expect(memoryProgressLine(256, 1024)).toBe('* memory transfer progress: 25.00 %');
    expect(memoryProgressLine(1, 3)).toBe('* memory transfer progress: 33.33 %');
  });

  test('merged resync progress shows, in time order, the minimum of each node’s latest sample', () => {
    const node1 = [
      { at: 1000, percent: 10 },
      { at: 5000, percent: 50 },
    ];
    const node2 = [
      { at: 3000, percent: 30 },
      { at: 7000, percent: 40 },
    ];
    expect(mergeSyncProgress([node1, node2], 2000)).toEqual([
      syncProgressLine(10), // t=1000: node1 10
      syncProgressLine(10), // t=3000: min(10, 30)
      syncProgressLine(30), // t=5000: min(50, 30)
      syncProgressLine(40), // t=7000: min(50, 40)
    ]);
  });

  test('samples closer together than the interval give one line (10 % slack), equal times in node order', () => {
    const samples = [
      [
        { at: 0, percent: 5 },
        { at: 1000, percent: 6 },
        { at: 1799, percent: 7 },
        { at: 1800, percent: 8 },
      ],
    ];
    expect(mergeSyncProgress(samples, 2000)).toEqual([syncProgressLine(5), syncProgressLine(8)]);
    // Both nodes report at t=0: the line comes after node 0’s sample only (node 1 is not known yet).
    expect(mergeSyncProgress([[{ at: 0, percent: 70 }], [{ at: 0, percent: 20 }]], 1000)).toEqual([syncProgressLine(70)]);
    expect(mergeSyncProgress([[{ at: 0, percent: 20 }], [{ at: 0, percent: 70 }]], 1000)).toEqual([syncProgressLine(20)]);
  });

  test('samples are taken in time order whatever order they arrive in', () => {
    const node1 = [
      { at: 4000, percent: 60 },
      { at: 0, percent: 10 },
    ];
    expect(mergeSyncProgress([node1], 1000)).toEqual([syncProgressLine(10), syncProgressLine(60)]);
  });

  test('nothing is printed once every node is at 100 %, and a zero interval prints every sample', () => {
    expect(
      mergeSyncProgress(
        [
          [
            { at: 0, percent: 100 },
            { at: 5000, percent: 100 },
          ],
        ],
        1000,
      ),
    ).toEqual([]);
    expect(
      mergeSyncProgress(
        [
          [
            { at: 0, percent: 1 },
            { at: 0, percent: 2 },
          ],
        ],
        0,
      ),
    ).toEqual([syncProgressLine(1), syncProgressLine(2)]);
    expect(mergeSyncProgress([], 1000)).toEqual([]);
  });

  test('a node at 100 % does not hide the other node’s progress, and a finished round does not delay the next line', () => {
    const lines = mergeSyncProgress(
      [
        [
          { at: 0, percent: 100 },
          { at: 500, percent: 100 },
        ],
        [{ at: 600, percent: 90 }],
      ],
      1000,
    );
    // t=0 and t=500: all at 100, nothing printed and the interval not restarted; t=600: node 2 at 90.
    expect(lines).toEqual([syncProgressLine(90)]);
  });
});

describe('operation errors', () => {
  test('a prerequisite error carries its code only when it has one', () => {
    expect(prereqError('no memory', 'insufficient_resources')).toEqual({
      type: 'PrereqFailed',
      message: 'no memory',
      code: 'insufficient_resources',
    });
    const plain = prereqError('forthcoming');
    expect(plain).toEqual({ type: 'PrereqFailed', message: 'forthcoming' });
    expect('code' in plain).toBe(false);
    expect(execError('disks degraded')).toEqual({ type: 'ExecutionFailed', message: 'disks degraded' });
  });

  test('print as Ganeti’s CLI prints them', () => {
    expect(formatOpError(prereqError("Instance 'x' not known", 'unknown_entity'))).toBe(
      "Failure: prerequisites not met for this operation: error type: unknown_entity, error details: Instance 'x' not known",
    );
    expect(formatOpError(prereqError('forthcoming instances not supported'))).toBe(
      'Failure: prerequisites not met for this operation: forthcoming instances not supported',
    );
    expect(formatOpError(execError('Could not migrate'))).toBe('Failure: command execution error: Could not migrate');
    expect(formatOpError({ type: OpFailure.HooksFailed, message: 'hooks execution failed' })).toBe('Failure: hooks execution failed');
    expect(formatOpError({ type: OpFailure.Aborted, message: 'aborted', code: 'wrong_state' })).toBe('Failure: aborted');
    expect(formatOpError({ type: OpFailure.ConfigurationError, message: 'no secondary' })).toBe('Failure: no secondary');
  });

  test('the failure type strings and error codes are the wire contract', () => {
    expect(OpFailure).toEqual({
      PrereqFailed: 'PrereqFailed',
      ExecutionFailed: 'ExecutionFailed',
      ConfigurationError: 'ConfigurationError',
      HooksFailed: 'HooksFailed',
      Aborted: 'Aborted',
      WrongWorkflowId: 'WrongWorkflowId',
    });
    expect(ActivityFailure).toEqual({
      NodeRpcFailed: 'NodeRpcFailed',
      NodeRpcTransient: 'NodeRpcTransient',
      ConfigConflict: 'ConfigConflict',
      MigrationFailed: 'MigrationFailed',
      MigrationTimedOut: 'MigrationTimedOut',
      InvalidRpcInput: 'InvalidRpcInput',
    });
    expect(ECODES).toEqual([
      'wrong_input',
      'wrong_state',
      'insufficient_resources',
      'environment_error',
      'unknown_entity',
      'resource_not_unique',
    ]);
  });

  test('only a transient node failure is retried', () => {
    expect([...NON_RETRYABLE_ACTIVITY_FAILURES].sort()).toEqual([
      'ConfigConflict',
      'InvalidRpcInput',
      'MigrationFailed',
      'MigrationTimedOut',
      'NodeRpcFailed',
    ]);
    expect(NON_RETRYABLE_ACTIVITY_FAILURES).not.toContain(ActivityFailure.NodeRpcTransient);
  });
});

describe('hypervisor versions', () => {
  test('KVM migrates between any versions; another hypervisor only between equal ones', () => {
    expect(hvVersionPairSafe('kvm', '7.2.22', '7.2.19')).toBe(true);
    expect(hvVersionPairSafe('kvm', '7.2.22', '7.2.22')).toBe(true);
    expect(hvVersionPairSafe('xen-pvm', '4.11', '4.11')).toBe(true);
    expect(hvVersionPairSafe('xen-pvm', '4.11', '4.17')).toBe(false);
  });
});

describe('node RPCs', () => {
  test('a port method is named as Ganeti names the RPC', () => {
    expect(rpcName('blockdevClose')).toBe('blockdev_close');
    expect(rpcName('instanceGetMigrationStatus')).toBe('instance_get_migration_status');
    expect(rpcName('drbdAttachNet')).toBe('drbd_attach_net');
    expect(rpcName('nodeInfo')).toBe('node_info');
    expect(rpcName('x')).toBe('x');
  });

  test('a node failure is final unless marked transient, and each error names its kind', () => {
    const failed = new NodeRpcError('disk not found');
    expect(failed).toBeInstanceOf(Error);
    expect({ name: failed.name, message: failed.message, transient: failed.transient }).toEqual({
      name: 'NodeRpcError',
      message: 'disk not found',
      transient: false,
    });
    expect(new NodeRpcError('unreachable', true).transient).toBe(true);
    const conflict = new ConfigError('primary changed', 'conflict');
    expect({ name: conflict.name, message: conflict.message, kind: conflict.kind }).toEqual({
      name: 'ConfigError',
      message: 'primary changed',
      kind: 'conflict',
    });
    expect(new StoreBusyError('lock held').name).toBe('StoreBusyError');
    expect(String(new StoreBusyError('lock held'))).toBe('StoreBusyError: lock held');
  });
});

test('a refused abort says which copy it protects and names the cleanup command', () => {
  expect(runningCopyRefusal('web1', 'running')).toBe(
    "instance web1 runs here (running) and may be the only current copy, refusing to stop it: run 'ganeti-temporal instance migrate --cleanup web1'",
  );
  expect(staleCopyRefusal('web1')).toBe(
    "the memory transfer of web1 completed, refusing to resume this stale copy: run 'ganeti-temporal instance migrate --cleanup web1'",
  );
});
