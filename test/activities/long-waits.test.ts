/**
 * The two long, heartbeating node activities — `waitForDiskSync` (Ganeti's _WaitUntilSync on one
 * node) and `waitForMigration` (the master's memory-transfer status loop) — run in a
 * MockActivityEnvironment against a strict, scripted fake of the node RPCs.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { describe, expect, test } from 'vitest';
import type { SyncHeartbeat } from '../../activities/disks.js';
import type { MigrationFailureDetails, MigrationHeartbeat } from '../../activities/hypervisor.js';
import { createNodeActivities } from '../../activities/index.js';
import { memoryProgressLine } from '../../domain/feedback.js';
import type { HookRunner } from '../../domain/ports.js';
import type { RpcInstance } from '../../domain/instance.js';
import { NodeRpcError, type MigrationStatusPayload, type NodeRpc, type NodeRpcMethod, type WaitSyncPayload } from '../../domain/ports.js';

// ---- fakes --------------------------------------------------------------------------------------

const INST: RpcInstance = {
  name: 'web1',
  uuid: 'inst-1',
  memory: 1024,
  vcpus: 2,
  bridges: ['br0'],
  hvparams: { migration_mode: 'live', migration_bandwidth: 32, migration_downtime: 30 },
  disks: [
    {
      index: 0,
      uuid: 'disk-1-0',
      size: 10240,
      template: 'drbd',
      drbd: { minor: 0, peerNode: 'node2', peerMinor: 0, peerIp: '198.51.100.12', port: 11000 },
    },
  ],
};

type Step<T> = T | Error;

/** An RPC answering a scripted sequence (an Error entry is thrown); `then` repeats the last entry forever. */
function script<T>(steps: Step<T>[], opts: { repeatLast?: boolean } = {}) {
  const args: unknown[][] = [];
  const fn = async (...a: unknown[]): Promise<T> => {
    args.push(a);
    const i = args.length - 1;
    if (i >= steps.length && !opts.repeatLast) throw new Error(`script exhausted after ${steps.length} calls`);
    const step = steps[Math.min(i, steps.length - 1)]!;
    if (step instanceof Error) throw step;
    return step;
  };
  return Object.assign(fn, { args, calls: () => args.length });
}

/** These activities never run hooks. */
const noHooks: HookRunner = {
  run: () => Promise.reject(new Error('unexpected hooks run')),
};

/** A strict NodeRpc: only the given methods exist; calling any other one throws. */
function fakeRpc(methods: Partial<Record<NodeRpcMethod, (...a: never[]) => Promise<unknown>>>): NodeRpc {
  const target: Record<string, unknown> = { node: 'node1', ...methods };
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop !== 'string' || prop === 'then' || prop in t) return t[prop as string];
      return () => {
        throw new Error(`unexpected NodeRpc call ${prop}`);
      };
    },
  }) as unknown as NodeRpc;
}

/** A MockActivityEnvironment recording (copies of) every heartbeat. */
function environment(info: ConstructorParameters<typeof MockActivityEnvironment>[0] = {}) {
  const env = new MockActivityEnvironment(info);
  const beats: unknown[] = [];
  const times: number[] = [];
  env.on('heartbeat', (d: unknown) => {
    beats.push(structuredClone(d));
    times.push(Date.now());
  });
  /** `env.run` with the activity's own result type. */
  const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args) as Promise<R>;
  return { env, run, beats, times };
}

const sync = (allDone: boolean, minPercent: number): WaitSyncPayload => ({ allDone, minPercent });
const mig = (
  status: MigrationStatusPayload['status'],
  transferredRam?: number,
  extra: Partial<MigrationStatusPayload> = {},
): MigrationStatusPayload => (transferredRam === undefined ? { status, ...extra } : { status, transferredRam, totalRam: 1024, ...extra });

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ApplicationFailure);
  return e as ApplicationFailure;
}

const COMPLETE = '* memory transfer complete';
const PROGRESS_RE = /^\* memory transfer progress: \d+\.\d\d %$/;

// ---- waitForDiskSync ----------------------------------------------------------------------------

describe('waitForDiskSync', () => {
  test('polls drbd_wait_sync until done, heartbeating the resync percentage and the samples', async () => {
    const waitSync = script([sync(false, 12.5), sync(false, 60), sync(true, 100)]);
    const acts = createNodeActivities({ rpc: fakeRpc({ drbdWaitSync: waitSync }), hooks: noHooks });
    const { run, beats } = environment();
    const r = await run(acts.waitForDiskSync, INST, { pollMs: 5 });

    expect(waitSync.calls()).toBe(3);
    // The agent validated the arguments: the node gets the parsed copy, equal to what was sent.
    expect(waitSync.args.map((a) => a[0])).toEqual([INST, INST, INST]);
    const hb = beats as SyncHeartbeat[];
    expect(hb.map((b) => [b.phase, b.node, b.percent, b.samples.length])).toEqual([
      ['resync', 'node1', 12.5, 1],
      ['resync', 'node1', 60, 2],
      ['resync', 'node1', 100, 2],
    ]);
    expect(r.node).toBe('node1');
    expect(r.samples.map((s) => s.percent)).toEqual([12.5, 60]);
    expect(r.samples[1]!.at).toBeGreaterThanOrEqual(r.samples[0]!.at);
  });

  test('returns at once with no samples when the devices are already in sync', async () => {
    const waitSync = script([sync(true, 100)]);
    const acts = createNodeActivities({ rpc: fakeRpc({ drbdWaitSync: waitSync }), hooks: noHooks });
    const { run, beats } = environment();
    expect(await run(acts.waitForDiskSync, INST, { pollMs: 5 })).toEqual({ node: 'node1', samples: [] });
    expect(beats).toEqual([{ phase: 'resync', node: 'node1', percent: 100, samples: [] }]);
  });

  test('a retried attempt resumes from the heartbeat details and keeps the earlier samples', async () => {
    const prev: SyncHeartbeat = {
      phase: 'resync',
      node: 'node1',
      percent: 40,
      samples: [
        { at: 1_000, percent: 20 },
        { at: 2_000, percent: 40 },
      ],
    };
    const waitSync = script([sync(false, 70), sync(true, 100)]);
    const acts = createNodeActivities({ rpc: fakeRpc({ drbdWaitSync: waitSync }), hooks: noHooks });
    const { run, beats } = environment({ heartbeatDetails: prev, attempt: 2 });
    const r = await run(acts.waitForDiskSync, INST, { pollMs: 5 });
    expect(r.samples.map((s) => s.percent)).toEqual([20, 40, 70]);
    // (the mock hands over the details object itself, so compare with literals)
    expect(r.samples.slice(0, 2)).toEqual([
      { at: 1_000, percent: 20 },
      { at: 2_000, percent: 40 },
    ]);
    expect((beats as SyncHeartbeat[]).map((b) => [b.percent, b.samples.map((s) => s.percent)])).toEqual([
      [70, [20, 40, 70]],
      [100, [20, 40, 70]],
    ]);
  });

  test('a node-reported failure becomes a non-retryable NodeRpcFailed', async () => {
    const waitSync = script<WaitSyncPayload>([
      sync(false, 30),
      new NodeRpcError('DRBD device drbd0 is not in sync: stats=StandAlone, Primary, UpToDate'),
    ]);
    const acts = createNodeActivities({ rpc: fakeRpc({ drbdWaitSync: waitSync }), hooks: noHooks });
    const { run, beats } = environment();
    const f = await failure(run(acts.waitForDiskSync, INST, { pollMs: 5 }));
    expect(f.type).toBe('NodeRpcFailed');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/is not in sync: stats=StandAlone/);
    expect((beats as SyncHeartbeat[]).map((b) => b.percent)).toEqual([30]); // the resume point survives
  });

  test('a transient RPC failure becomes a retryable NodeRpcTransient', async () => {
    const waitSync = script<WaitSyncPayload>([new NodeRpcError('injected transient fault in drbd_wait_sync on node1', true)]);
    const acts = createNodeActivities({ rpc: fakeRpc({ drbdWaitSync: waitSync }), hooks: noHooks });
    const { run } = environment();
    const f = await failure(run(acts.waitForDiskSync, INST, { pollMs: 5 }));
    expect(f.type).toBe('NodeRpcTransient');
    expect(f.nonRetryable).toBe(false);
    expect(waitSync.calls()).toBe(1);
  });

  test('cancellation stops the wait with a CancelledFailure and no further polls', async () => {
    const waitSync = script([sync(false, 50)], { repeatLast: true });
    const acts = createNodeActivities({ rpc: fakeRpc({ drbdWaitSync: waitSync }), hooks: noHooks });
    const { env, run, beats } = environment();
    env.on('heartbeat', () => {
      if (beats.length === 2) env.cancel();
    });
    await expect(run(acts.waitForDiskSync, INST, { pollMs: 5 })).rejects.toBeInstanceOf(CancelledFailure);
    const calls = waitSync.calls();
    expect(calls).toBe(2);
    await new Promise((r) => setTimeout(r, 30));
    expect(waitSync.calls()).toBe(calls);
    expect(beats).toHaveLength(2);
  });
});

// ---- waitForMigration ---------------------------------------------------------------------------

describe('waitForMigration', () => {
  test('heartbeats carry the transferred RAM and percentage, and "* memory transfer complete" ends the lines', async () => {
    const status = script([mig('active', 256), mig('active', 512), mig('completed', 1024)]);
    const acts = createNodeActivities({ rpc: fakeRpc({ instanceGetMigrationStatus: status }), hooks: noHooks });
    const { run, beats } = environment();
    const r = await run(acts.waitForMigration, INST, { pollMs: 5, progressMs: 60_000 });

    expect(status.calls()).toBe(3);
    expect(status.args.every((a) => JSON.stringify(a[0]) === JSON.stringify(INST))).toBe(true);
    const hb = beats as MigrationHeartbeat[];
    expect(hb.map((b) => [b.phase, b.node, b.status, b.transferredRam, b.totalRam, b.percent, b.lines])).toEqual([
      ['memory', 'node1', 'active', 256, 1024, 25, []],
      ['memory', 'node1', 'active', 512, 1024, 50, []],
      ['memory', 'node1', 'completed', 1024, 1024, 100, [COMPLETE]],
    ]);
    expect(r).toEqual({ lines: [COMPLETE], transferredRam: 1024, totalRam: 1024 });
  });

  test('progress lines appear at most every progressMs, show the progress at that moment, and the completion line comes last', async () => {
    const steps = Array.from({ length: 40 }, (_, i) => mig('active', 20 * (i + 1)));
    const status = script([...steps, mig('completed', 1024)]);
    const acts = createNodeActivities({ rpc: fakeRpc({ instanceGetMigrationStatus: status }), hooks: noHooks });
    const { run, beats, times } = environment();
    const t0 = Date.now();
    const r = await run(acts.waitForMigration, INST, { pollMs: 5, progressMs: 50 });
    const elapsed = Date.now() - t0;

    const hb = beats as MigrationHeartbeat[];
    expect(r.lines.at(-1)).toBe(COMPLETE);
    const progress = r.lines.slice(0, -1);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.length).toBeLessThanOrEqual(Math.floor(elapsed / 50));
    for (const l of progress) expect(l).toMatch(PROGRESS_RE);

    // each line appeared in the heartbeat of the poll that produced it, showing that poll's numbers
    const appeared: number[] = [];
    hb.forEach((b, i) => {
      const prevLen = i === 0 ? 0 : hb[i - 1]!.lines.length;
      if (b.lines.length > prevLen && b.status === 'active') {
        expect(b.lines.length).toBe(prevLen + 1);
        expect(b.lines.at(-1)).toBe(memoryProgressLine(b.transferredRam!, 1024));
        appeared.push(times[i]!);
      }
    });
    expect(appeared).toHaveLength(progress.length);
    expect(appeared[0]! - t0).toBeGreaterThanOrEqual(49);
    for (let i = 1; i < appeared.length; i++) expect(appeared[i]! - appeared[i - 1]!).toBeGreaterThanOrEqual(49);
    // heartbeats were sent on every poll, far more often than lines
    expect(hb).toHaveLength(41);
  });

  test('a retried attempt resumes from the heartbeat details and keeps the earlier lines', async () => {
    const prev: MigrationHeartbeat = {
      phase: 'memory',
      node: 'node1',
      status: 'active',
      transferredRam: 300,
      totalRam: 1024,
      percent: (100 * 300) / 1024,
      lines: ['* memory transfer progress: 29.30 %'],
      lastProgressAt: Date.now(),
      unknownStatuses: 0,
    };
    const status = script([mig('active', 700), mig('completed', 1100)]);
    const acts = createNodeActivities({ rpc: fakeRpc({ instanceGetMigrationStatus: status }), hooks: noHooks });
    const { run, beats } = environment({ heartbeatDetails: prev, attempt: 2 });
    const r = await run(acts.waitForMigration, INST, { pollMs: 5, progressMs: 60_000 });
    expect(r).toEqual({ lines: ['* memory transfer progress: 29.30 %', COMPLETE], transferredRam: 1100, totalRam: 1024 });
    expect((beats as MigrationHeartbeat[]).map((b) => b.lines)).toEqual([['* memory transfer progress: 29.30 %'], r.lines]);
  });

  test('a resumed attempt keeps counting unusable statuses from the heartbeat details', async () => {
    const prev: MigrationHeartbeat = {
      phase: 'memory',
      node: 'node1',
      status: 'setup',
      transferredRam: null,
      totalRam: null,
      percent: null,
      lines: [],
      lastProgressAt: Date.now(),
      unknownStatuses: 4,
    };
    const status = script([mig('setup'), mig('completed', 1024)]);
    const acts = createNodeActivities({ rpc: fakeRpc({ instanceGetMigrationStatus: status }), hooks: noHooks });
    const { run } = environment({ heartbeatDetails: prev, attempt: 2 });
    const f = await failure(run(acts.waitForMigration, INST, { pollMs: 5, progressMs: 60_000 }));
    expect(f.type).toBe('MigrationFailed');
    expect(status.calls()).toBe(1);
  });

  test('a failed migration status throws a non-retryable MigrationFailed carrying the lines so far and the error', async () => {
    const status = script([mig('active', 512), mig('failed', 600, { error: 'Unable to write to socket: Connection reset by peer' })]);
    const acts = createNodeActivities({ rpc: fakeRpc({ instanceGetMigrationStatus: status }), hooks: noHooks });
    const { run } = environment();
    const f = await failure(run(acts.waitForMigration, INST, { pollMs: 5, progressMs: 0 }));
    expect(f.type).toBe('MigrationFailed');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe('hypervisor returned failure');
    expect(f.details?.[0]).toEqual({
      lines: ['* memory transfer progress: 50.00 %'],
      status: 'failed',
      error: 'Unable to write to socket: Connection reset by peer',
    } satisfies MigrationFailureDetails);
  });

  test('a cancelled migration status throws a non-retryable MigrationFailed', async () => {
    const status = script([mig('active', 100), mig('cancelled', 120)]);
    const acts = createNodeActivities({ rpc: fakeRpc({ instanceGetMigrationStatus: status }), hooks: noHooks });
    const { run } = environment();
    const f = await failure(run(acts.waitForMigration, INST, { pollMs: 5, progressMs: 60_000 }));
    expect(f.type).toBe('MigrationFailed');
    expect(f.nonRetryable).toBe(true);
    expect(f.details?.[0]).toEqual({ lines: [], status: 'cancelled' });
    expect(status.calls()).toBe(2);
  });

  test('five consecutive unusable statuses ("setup"/"none") fail the migration', async () => {
    const status = script([mig('setup'), mig('none'), mig('setup'), mig('none'), mig('setup'), mig('completed', 1024)]);
    const acts = createNodeActivities({ rpc: fakeRpc({ instanceGetMigrationStatus: status }), hooks: noHooks });
    const { run, beats } = environment();
    const f = await failure(run(acts.waitForMigration, INST, { pollMs: 5, progressMs: 60_000 }));
    expect(f.type).toBe('MigrationFailed');
    expect(f.nonRetryable).toBe(true);
    expect(f.details?.[0]).toEqual({ lines: [], status: 'setup', error: 'unknown migration status' });
    expect(status.calls()).toBe(5);
    expect((beats as MigrationHeartbeat[]).map((b) => b.unknownStatuses)).toEqual([1, 2, 3, 4]);
  });

  test('a usable status in between resets the count of unusable ones', async () => {
    const unknown = (n: number) => Array.from({ length: n }, (_, i) => mig(i % 2 ? 'none' : 'setup'));
    const status = script([...unknown(4), mig('active', 100), ...unknown(4), mig('completed', 1024)]);
    const acts = createNodeActivities({ rpc: fakeRpc({ instanceGetMigrationStatus: status }), hooks: noHooks });
    const { run, beats } = environment();
    const r = await run(acts.waitForMigration, INST, { pollMs: 2, progressMs: 60_000 });
    expect(r).toEqual({ lines: [COMPLETE], transferredRam: 1024, totalRam: 1024 });
    expect(status.calls()).toBe(10);
    expect((beats as MigrationHeartbeat[]).map((b) => b.unknownStatuses)).toEqual([1, 2, 3, 4, 0, 1, 2, 3, 4, 0]);
  });

  test('a node-reported RPC failure becomes a non-retryable NodeRpcFailed', async () => {
    const status = script<MigrationStatusPayload>([mig('active', 100), new NodeRpcError('Instance web1 is not running on node1')]);
    const acts = createNodeActivities({ rpc: fakeRpc({ instanceGetMigrationStatus: status }), hooks: noHooks });
    const { run, beats } = environment();
    const f = await failure(run(acts.waitForMigration, INST, { pollMs: 5, progressMs: 60_000 }));
    expect(f.type).toBe('NodeRpcFailed');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe('Instance web1 is not running on node1');
    expect((beats as MigrationHeartbeat[]).map((b) => b.transferredRam)).toEqual([100]);
  });

  test('a transient RPC failure becomes a retryable NodeRpcTransient', async () => {
    const status = script<MigrationStatusPayload>([
      new NodeRpcError('injected transient fault in instance_get_migration_status on node1', true),
    ]);
    const acts = createNodeActivities({ rpc: fakeRpc({ instanceGetMigrationStatus: status }), hooks: noHooks });
    const { run } = environment();
    const f = await failure(run(acts.waitForMigration, INST, { pollMs: 5, progressMs: 60_000 }));
    expect(f.type).toBe('NodeRpcTransient');
    expect(f.nonRetryable).toBe(false);
  });

  test('cancellation stops the wait with a CancelledFailure after one last status check, and no further polls', async () => {
    const status = script([mig('active', 100)], { repeatLast: true });
    const acts = createNodeActivities({ rpc: fakeRpc({ instanceGetMigrationStatus: status }), hooks: noHooks });
    const { env, run, beats } = environment();
    env.on('heartbeat', () => {
      if (beats.length === 3) env.cancel();
    });
    await expect(run(acts.waitForMigration, INST, { pollMs: 5, progressMs: 60_000 })).rejects.toBeInstanceOf(CancelledFailure);
    expect(status.calls()).toBe(4); // three polls, then the check that the transfer did not complete meanwhile
    await new Promise((r) => setTimeout(r, 30));
    expect(status.calls()).toBe(4);
    expect(beats).toHaveLength(3);
  });

  test('cancelled after the hypervisor completed the transfer, the wait reports completion (past the point of no return)', async () => {
    const status = script([mig('active', 100), mig('active', 500), mig('completed', 1100)]);
    const acts = createNodeActivities({ rpc: fakeRpc({ instanceGetMigrationStatus: status }), hooks: noHooks });
    const { env, run, beats } = environment();
    env.on('heartbeat', () => {
      if (beats.length === 2) env.cancel();
    });
    const r = await run(acts.waitForMigration, INST, { pollMs: 5, progressMs: 60_000 });
    expect(r).toEqual({ lines: [COMPLETE], transferredRam: 1100, totalRam: 1024 });
    expect(status.calls()).toBe(3);
  });

  test('the strict fake refuses RPCs the activity has no business calling', async () => {
    const acts = createNodeActivities({ rpc: fakeRpc({}), hooks: noHooks });
    const { run } = environment();
    const f = await failure(run(acts.waitForMigration, INST, { pollMs: 5, progressMs: 60_000 }));
    expect(f.type).toBe('InternalError');
    expect(f.message).toBe('unexpected NodeRpc call instanceGetMigrationStatus');
  });
});
