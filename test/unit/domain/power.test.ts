/**
 * Unit tests of the pure `checkPowerPrereq` (LUInstanceStartup / LUInstanceShutdown CheckPrereq;
 * docs/behaviour.md §14 "Start and shutdown"). A small driver answers the facts it asks for from a
 * table; an unexpected request fails the test, so each test also pins which RPCs Ganeti would send.
 */
import { describe, expect, test } from 'vitest';
import { defaultClusterConfig } from '../../../adapters/sim/cluster.js';
import { checkPowerPrereq, type PowerOutcome, type PowerRequest } from '../../../domain/power.js';
import { powerSteps } from '../../../domain/plan.js';
import type { FactRequest, Facts, RpcResult } from '../../../domain/prereq.js';
import type { ClusterConfig } from '../../../domain/types.js';
import { startCommand } from '../../../domain/naming.js';
import { describeZodError, ShutdownInputSchema, StartupInputSchema } from '../../../domain/ops.js';
import { shutdownSummary, startupSummary } from '../../../domain/summary.js';

const OK = (payload: unknown = null): RpcResult => ({ ok: true, payload });
const ERR = (msg: string): RpcResult => ({ ok: false, offline: false, msg });

/** web1 runs on node1 (secondary node2) in the demo cluster; node1 has 10000 MiB free. */
const healthy = (): Facts => ({
  'bridges_exist:node1': OK(),
  'instance_info:node1': OK(null),
  'memory:node1': OK({ free: 10000, reserved: 1024 }),
});

const cluster = (edit: (c: ClusterConfig) => void = () => undefined): ClusterConfig => {
  const c = structuredClone(defaultClusterConfig());
  edit(c);
  return c;
};

function drive(
  snap: ClusterConfig,
  req: PowerRequest,
  answers: Facts = healthy(),
): { out: Exclude<PowerOutcome, { status: 'need' }>; asked: string[]; requests: FactRequest[] } {
  const facts: Facts = {};
  const asked: string[] = [];
  const requests: FactRequest[] = [];
  for (let i = 0; i < 10; i++) {
    const out = checkPowerPrereq(snap, req, facts);
    if (out.status !== 'need') return { out, asked, requests };
    for (const f of out.facts) {
      requests.push(f);
      const a = answers[f.key];
      if (!a) throw new Error(`unexpected fact request ${f.key}`);
      facts[f.key] = a;
      asked.push(f.key);
    }
  }
  throw new Error('did not settle');
}

const start = (instance = 'web1'): PowerRequest => ({ kind: 'start', instance });
const shutdown = (instance = 'web1'): PowerRequest => ({ kind: 'shutdown', instance });

describe('start prerequisites', () => {
  test('a stopped instance: bridges, instance_info, then the memory reservation on the primary, in that order', () => {
    const { out, requests } = drive(cluster(), start());
    expect(requests).toEqual([
      { key: 'bridges_exist:node1', kind: 'rpc', rpc: 'bridges_exist', node: 'node1', bridges: ['br0'] },
      { key: 'instance_info:node1', kind: 'rpc', rpc: 'instance_info', node: 'node1' },
      { key: 'memory:node1', kind: 'reserve-memory', node: 'node1', needed: 512, wanted: 1024 },
    ]);
    expect(out).toEqual({
      status: 'ok',
      plan: { kind: 'start', instance: 'web1', node: 'node1', running: false, freeMemory: 10000, reservedMemory: 1024, feedback: [] },
    });
  });

  test('no bridged NIC: no bridges_exist; exactly minmem free is enough', () => {
    const snap = cluster((c) => void (c.instances.web1!.nics = []));
    const { out, asked } = drive(snap, start(), { ...healthy(), 'memory:node1': OK({ free: 512, reserved: 512 }) });
    expect(asked).toEqual(['instance_info:node1', 'memory:node1']);
    expect(out).toMatchObject({ status: 'ok', plan: { freeMemory: 512, reservedMemory: 512 } });
  });

  test('an instance already running: no memory check, planned as running', () => {
    const answers = { ...healthy(), 'instance_info:node1': OK({ state: 'running', memory: 1024, vcpus: 1 }) };
    const { out, asked } = drive(cluster(), start(), answers);
    expect(asked).toEqual(['bridges_exist:node1', 'instance_info:node1']);
    expect(out).toMatchObject({ status: 'ok', plan: { running: true, freeMemory: null, reservedMemory: 0 } });
  });

  test('too little free memory on the primary is refused as Ganeti words it', () => {
    const { out } = drive(cluster(), start(), { ...healthy(), 'memory:node1': OK({ free: 100, reserved: 0 }) });
    expect(out).toMatchObject({
      status: 'failed',
      error: {
        type: 'PrereqFailed',
        code: 'insufficient_resources',
        message: 'Not enough memory on node node1 for starting instance web1: needed 512 MiB, available 100 MiB',
      },
    });
  });

  test.each([
    ['memory:node1', ERR('boom'), "Can't get data from node node1: boom", 'environment_error'],
    ['memory:node1', OK({ free: 1.5, reserved: 0 }), "Can't compute free memory on node node1, result was '1.5'", 'environment_error'],
    ['instance_info:node1', ERR('down'), 'Error checking node node1: down', 'environment_error'],
    ['bridges_exist:node1', ERR('no br0'), "Error checking bridges on destination node 'node1': no br0", 'environment_error'],
  ])('a failed fact %s is refused', (key, answer, message, code) => {
    const { out } = drive(cluster(), start(), { ...healthy(), [key]: answer });
    expect(out).toMatchObject({ status: 'failed', error: { message, code } });
  });

  test('unknown, forthcoming and offline instances and an offline primary are refused without an RPC', () => {
    const cases: Array<[ClusterConfig, string, string | undefined]> = [
      [cluster(), "Instance 'nope' not known", 'unknown_entity'],
      [cluster((c) => void (c.instances.web1!.forthcoming = true)), 'forthcoming instances not supported for this operation', undefined],
      [
        cluster((c) => void (c.instances.web1!.adminState = 'offline')),
        "Instance 'web1' is marked to be offline, can't use instance from outside down, up states",
        'wrong_state',
      ],
      [cluster((c) => void (c.nodes.node1!.offline = true)), "Can't use offline node node1", 'wrong_state'],
    ];
    for (const [snap, message, code] of cases) {
      for (const req of [start(message.includes('nope') ? 'nope' : 'web1'), shutdown(message.includes('nope') ? 'nope' : 'web1')]) {
        const { out, asked } = drive(snap, req, {});
        expect(asked).toEqual([]);
        expect(out.status === 'failed' && out.error).toEqual({ type: 'PrereqFailed', message, ...(code ? { code } : {}) });
      }
    }
  });
});

describe('shutdown prerequisites', () => {
  test('sends no RPC: the instance is shut down on its primary whether it runs or not', () => {
    for (const adminState of ['up', 'down'] as const) {
      const { out, asked } = drive(
        cluster((c) => void (c.instances.web2!.adminState = adminState)),
        shutdown('web2'),
        {},
      );
      expect(asked).toEqual([]);
      expect(out).toMatchObject({ status: 'ok', plan: { kind: 'shutdown', instance: 'web2', node: 'node2' } });
    }
  });
});

describe('the steps', () => {
  const web1 = cluster().instances.web1!;
  test('start: mark up, activate the disks, start; only the mark when already running; no mark with no-remember', () => {
    expect(powerSteps('start', web1, { running: false, remember: true }).map((s) => s.key)).toEqual([
      'admin-state',
      'activate-disks',
      'start',
    ]);
    expect(powerSteps('start', web1, { running: true, remember: true }).map((s) => s.key)).toEqual(['admin-state']);
    expect(powerSteps('start', web1, { running: false, remember: false }).map((s) => s.key)).toEqual(['activate-disks', 'start']);
  });
  test('shutdown: mark down, shut down, deactivate the disks', () => {
    expect(powerSteps('shutdown', web1, { running: false, remember: true }).map((s) => s.label)).toEqual([
      'Mark the instance down',
      'Shut down the instance on node1',
      'Deactivate the disks on all nodes',
    ]);
  });
});

describe('step labels', () => {
  test('start names the primary; without remember there is nothing to do for a running instance', () => {
    const web2 = cluster().instances.web2!;
    expect(powerSteps('start', web2, { running: false, remember: true })).toEqual([
      { key: 'admin-state', label: 'Mark the instance up' },
      { key: 'activate-disks', label: 'Activate the disks with node2 as primary' },
      { key: 'start', label: 'Start the instance on node2' },
    ]);
    expect(powerSteps('start', web2, { running: true, remember: false })).toEqual([]);
    expect(powerSteps('shutdown', web2, { running: true, remember: false }).map((s) => s.key)).toEqual(['shutdown', 'deactivate-disks']);
  });
});

describe('inputs', () => {
  test('defaults: no force, remembered, not a dry run, no reason, a 120 s timeout', () => {
    expect(StartupInputSchema.parse({ instance: 'web1' })).toEqual({
      instance: 'web1',
      force: false,
      noRemember: false,
      dryRun: false,
      reason: '',
    });
    expect(ShutdownInputSchema.parse({ instance: 'web1' })).toEqual({
      instance: 'web1',
      timeout: 120,
      noRemember: false,
      dryRun: false,
      reason: '',
    });
  });

  test.each([
    [{ instance: 'web1', timeout: -1 }, /timeout/],
    [{ instance: 'web1', timeout: 1.5 }, /timeout/],
    [{ instance: 'web1', timeout: 86_401 }, /timeout/],
    [{ instance: '../etc' }, /instance/],
    [{ instance: 'web1', force: true }, /Unrecognized key/],
  ])('a shutdown input %j is refused', (input, message) => {
    const r = ShutdownInputSchema.safeParse(input);
    expect(r.success).toBe(false);
    if (!r.success) expect(describeZodError(r.error)).toMatch(message);
  });

  test('a start refuses unknown keys and a shutdown accepts the timeout bounds', () => {
    expect(StartupInputSchema.safeParse({ instance: 'web1', timeout: 5 }).success).toBe(false);
    expect(StartupInputSchema.safeParse({ instance: 'web1', reason: 'x'.repeat(1001) }).success).toBe(false);
    expect(ShutdownInputSchema.parse({ instance: 'web1', timeout: 0 }).timeout).toBe(0);
    expect(ShutdownInputSchema.parse({ instance: 'web1', timeout: 86_400 }).timeout).toBe(86_400);
  });
});

describe('summaries and the repair command', () => {
  test('a start and a shutdown name the primary when the configuration is known, and their flags', () => {
    const cfg = cluster();
    expect(startupSummary(StartupInputSchema.parse({ instance: 'web2' }), cfg)).toBe('Start web2 on node2');
    expect(startupSummary(StartupInputSchema.parse({ instance: 'web2', force: true, noRemember: true, dryRun: true }), cfg)).toBe(
      'Start web2 on node2, forced (not remembered) (dry run)',
    );
    expect(startupSummary(StartupInputSchema.parse({ instance: 'web2' }))).toBe('Start web2');
    expect(shutdownSummary(ShutdownInputSchema.parse({ instance: 'web1' }), cfg)).toBe('Shut down web1 on node1, timeout 120 s');
    expect(shutdownSummary(ShutdownInputSchema.parse({ instance: 'nosuch', timeout: 5, noRemember: true, dryRun: true }), cfg)).toBe(
      'Shut down nosuch, timeout 5 s (not remembered) (dry run)',
    );
  });

  test('the start command is the CLI command', () => {
    expect(startCommand('web1')).toBe('ganeti-temporal instance start web1');
  });
});
