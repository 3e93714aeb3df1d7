/**
 * `instance start` and `instance shutdown` (LUInstanceStartup / LUInstanceShutdown, docs/behaviour.md
 * §14 "Start and shutdown") on a real dev server over the simulated cluster: the resulting
 * configuration and hardware, dry runs, hooks, refusals, the repair of a failed start, and the
 * exclusion of other operations on the instance.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import {
  InstanceBusyError,
  operationResult,
  shutdownInstance,
  startShutdown,
  startStartup,
  startupInstance,
  type ShutdownInput,
  type StartupInput,
} from '../../client/api.js';
import { abortOperation, AbortRefusedError, listJobs } from '../../client/jobs.js';
import type { HookPath, HookPhase } from '../../domain/hook-env.js';
import { progressQuery, SA } from '../../workflows/messages.js';
import type { TestCluster } from '../helpers/cluster.js';
import {
  configShape,
  failure,
  hardwareShape,
  outcomeOf,
  start as startMigration,
  useHarness,
  waitForProgress,
  type Outcome,
} from '../helpers/harness.js';
import { mutatingSteps } from '../helpers/steps.js';

const h = useHarness();

const startup = (c: TestCluster, input: StartupInput): Promise<Outcome> =>
  outcomeOf(startupInstance(h.env().client, input, { cluster: c.name, snapshot: c.cfg() }));
const shutdown = (c: TestCluster, input: ShutdownInput): Promise<Outcome> =>
  outcomeOf(shutdownInstance(h.env().client, input, { cluster: c.name, snapshot: c.cfg() }));

const markDown =
  (...names: string[]) =>
  (cfg: { instances: Record<string, { adminState: string; disksActive: boolean }> }) => {
    for (const name of names) {
      cfg.instances[name]!.adminState = 'down';
      cfg.instances[name]!.disksActive = false;
    }
  };

const started = (c: TestCluster, name: string, remembered = true): string[] =>
  checkInvariants({ kind: 'started', remembered }, c.instance(name), c.status(name));
const stopped = (c: TestCluster, name: string, remembered = true): string[] =>
  checkInvariants({ kind: 'stopped', remembered }, c.instance(name), c.status(name));

describe('instance start', () => {
  test('a stopped DRBD instance: disks assembled on both nodes (secondaries first), started on its primary only, marked up', async () => {
    const { c } = await h.cluster({ configure: markDown('web1') });
    expect(stopped(c, 'web1')).toEqual([]);
    const r = await startup(c, { instance: 'web1', reason: 'back from maintenance' });
    expect(r.ok && r.result).toEqual({ outcome: 'started', instance: 'web1', sourceNode: 'node1', targetNode: 'node1', feedback: [] });
    expect(mutatingSteps(c, 'web1')).toEqual([
      'blockdev_assemble(secondary)@node1+node2',
      'blockdev_assemble(primary)@node1',
      'instance_start(back from maintenance)@node1',
    ]);
    expect(c.instance('web1')).toMatchObject({ primaryNode: 'node1', adminState: 'up', disksActive: true });
    expect(c.status('web1').runningOn).toEqual(['node1']);
    expect(started(c, 'web1')).toEqual([]);
    expect(c.cfg().reservations).toEqual({});
  });

  test('an instance already running: nothing to start, only marked up', async () => {
    const { c } = await h.cluster();
    await c.config.modifyInstance('web1', { adminState: 'down' });
    const hw0 = hardwareShape(c);
    const r = await startup(c, { instance: 'web1' });
    expect(r.ok && r.result.feedback).toEqual([" - INFO: Instance 'web1' is already running on node1, not starting it"]);
    expect(mutatingSteps(c, 'web1')).toEqual([]);
    expect(hardwareShape(c)).toEqual(hw0);
    expect(c.instance('web1').adminState).toBe('up');
    expect(started(c, 'web1')).toEqual([]);
  });

  test('refused for lack of memory on the primary: nothing changes, no reservation is left', async () => {
    const { c } = await h.cluster({ configure: (cfg) => (markDown('web1')(cfg), void (cfg.nodes.node1!.memoryTotal = 3072)) });
    const cfg0 = configShape(c);
    const hw0 = hardwareShape(c);
    const e = failure(await startup(c, { instance: 'web1' }));
    expect(e).toMatchObject({ type: 'PrereqFailed', code: 'insufficient_resources' });
    expect(e.message).toMatch(/^Not enough memory on node node1 for starting instance web1: needed 512 MiB, available -?\d+ MiB$/);
    expect(configShape(c)).toEqual(cfg0);
    expect(hardwareShape(c)).toEqual(hw0);
    expect(c.cfg().reservations).toEqual({});
    expect(stopped(c, 'web1')).toEqual([]);
  });

  test('a failed start deactivates the disks again and names the repair; a repeated start repairs it', async () => {
    const { c } = await h.cluster({ configure: markDown('web1') });
    await c.addFault({ rpc: 'instance_start', node: 'node1', mode: 'permanent' });
    const handle = await startStartup(h.env().client, { instance: 'web1' }, { cluster: c.name });
    const e = failure(await outcomeOf(operationResult(handle)));
    expect(e).toMatchObject({ type: 'ExecutionFailed', message: 'Could not start instance: injected failure in instance_start on node1' });
    expect(await handle.query(progressQuery)).toMatchObject({
      needsOperator: true,
      repair: "fix the cause, then run 'ganeti-temporal instance start web1' again",
    });
    // As in Ganeti the instance stays marked up, its disks shut down on both nodes.
    expect(c.instance('web1')).toMatchObject({ adminState: 'up', disksActive: false });
    expect(c.status('web1').runningOn).toEqual([]);
    expect(Object.values(c.status('web1').disks[0]!.nodes).map((d) => d.connection)).toEqual(['Unconfigured', 'Unconfigured']);
    expect(c.cfg().reservations).toEqual({});

    await c.clearFaults();
    expect((await startup(c, { instance: 'web1' })).ok).toBe(true);
    expect(started(c, 'web1')).toEqual([]);
  });

  test('a disk that cannot be assembled on the secondary fails the start unless --force', async () => {
    const { c } = await h.cluster({ configure: markDown('web1') });
    await c.addFault({ rpc: 'blockdev_assemble', node: 'node2', mode: 'permanent' });
    const e = failure(await startup(c, { instance: 'web1' }));
    expect(e.message).toBe('Disk consistency error');
    expect(e.feedback).toEqual([
      ' - WARNING: Could not prepare block device disk/0 on node node2 (is_primary=False, pass=1): injected failure in blockdev_assemble on node2',
      "      Hint: If the message above refers to a secondary node, you can retry the operation using '--force'",
    ]);
    expect(c.status('web1').runningOn).toEqual([]);
    expect(c.instance('web1').disksActive).toBe(false);

    const r = await startup(c, { instance: 'web1', force: true });
    expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
    expect(c.status('web1').runningOn).toEqual(['node1']);
  });
});

describe('instance shutdown', () => {
  test('a running DRBD instance: stopped, disks deactivated on both nodes, marked down; started again', async () => {
    const { c } = await h.cluster();
    const r = await shutdown(c, { instance: 'web1', reason: 'maintenance' });
    expect(r.ok && r.result).toEqual({ outcome: 'stopped', instance: 'web1', sourceNode: 'node1', targetNode: 'node1', feedback: [] });
    expect(mutatingSteps(c, 'web1')).toEqual(['instance_shutdown(maintenance)@node1', 'blockdev_shutdown@node1+node2']);
    expect(c.instance('web1')).toMatchObject({ adminState: 'down', disksActive: false });
    expect(stopped(c, 'web1')).toEqual([]);

    expect((await startup(c, { instance: 'web1' })).ok).toBe(true);
    expect(started(c, 'web1')).toEqual([]);
  });

  test('a sharedfile instance: closed on its primary; started again', async () => {
    const { c } = await h.cluster();
    expect((await shutdown(c, { instance: 'files1' })).ok).toBe(true);
    expect(stopped(c, 'files1')).toEqual([]);
    expect((await startup(c, { instance: 'files1' })).ok).toBe(true);
    expect(started(c, 'files1')).toEqual([]);
    expect(Object.keys(c.status('files1').disks[0]!.nodes)).toEqual(['node2']);
  });

  test('--timeout: a guest ignoring the soft shutdown is killed when it runs out', async () => {
    const { c } = await h.cluster();
    await c.inject('web1', 'node1', 'unresponsive');
    const r = await shutdown(c, { instance: 'web1', timeout: 5 });
    expect(r.ok).toBe(true);
    expect(mutatingSteps(c, 'web1')[0]).toBe('instance_shutdown(forced after 5 s)@node1');
    expect(stopped(c, 'web1')).toEqual([]);
  });

  test('--no-remember: stopped and started without touching the admin state', async () => {
    const { c } = await h.cluster();
    expect((await shutdown(c, { instance: 'web2', noRemember: true })).ok).toBe(true);
    expect(c.instance('web2').adminState).toBe('up');
    expect(stopped(c, 'web2', false)).toEqual([]);
    await c.config.modifyInstance('web2', { adminState: 'down' });
    expect((await startup(c, { instance: 'web2', noRemember: true })).ok).toBe(true);
    expect(c.instance('web2').adminState).toBe('down');
    expect(started(c, 'web2', false)).toEqual([]);
  });

  test('a failed shutdown is a warning, as in Ganeti: the operation ends marked down; a repeated shutdown stops it', async () => {
    const { c } = await h.cluster();
    await c.addFault({ rpc: 'instance_shutdown', node: 'node1', mode: 'permanent' });
    const r = await shutdown(c, { instance: 'web1' });
    expect(r.ok && r.result.feedback).toEqual([
      ' - WARNING: Could not shutdown instance: injected failure in instance_shutdown on node1',
      // The guest still holds its disk open on the primary: that disk shutdown fails too (a warning).
      expect.stringMatching(/^ - WARNING: Could not shutdown block device disk\/0 on node node1: .*held open/),
    ]);
    expect(c.instance('web1')).toMatchObject({ adminState: 'down', disksActive: false });
    expect(c.status('web1').runningOn).toEqual(['node1']);

    await c.clearFaults();
    expect((await shutdown(c, { instance: 'web1' })).ok).toBe(true);
    expect(stopped(c, 'web1')).toEqual([]);
  });
});

describe('refusals and dry runs', () => {
  test('dry runs check the prerequisites and plan, and change nothing', async () => {
    const { c } = await h.cluster({ configure: markDown('web2') });
    const cfg0 = configShape(c);
    const hw0 = hardwareShape(c);
    const s = await startup(c, { instance: 'web2', dryRun: true });
    expect(s.ok && s.result).toMatchObject({
      outcome: 'dry-run',
      plan: {
        operation: 'start',
        sourceNode: 'node2',
        targetNode: 'node2',
        steps: ['Mark the instance up', 'Activate the disks with node2 as primary', 'Start the instance on node2'],
      },
    });
    const d = await shutdown(c, { instance: 'web1', dryRun: true, timeout: 30 });
    expect(d.ok && d.result.plan?.steps).toEqual([
      'Mark the instance down',
      'Shut down the instance on node1',
      'Deactivate the disks on all nodes',
    ]);
    expect(configShape(c)).toEqual(cfg0);
    expect(hardwareShape(c)).toEqual(hw0);
    expect(c.cfg().reservations).toEqual({});
    expect(mutatingSteps(c, 'web1')).toEqual([]);
    expect(mutatingSteps(c, 'web2')).toEqual([]);
  });

  test('an offline primary, an unknown and an offline instance are refused, nothing changes', async () => {
    const { c } = await h.cluster({ configure: (cfg) => void (cfg.instances.web3!.adminState = 'offline') });
    await c.config.modifyNode('node2', { offline: true });
    const cfg0 = configShape(c);
    expect(failure(await startup(c, { instance: 'web2' }))).toMatchObject({ code: 'wrong_state', message: "Can't use offline node node2" });
    expect(failure(await shutdown(c, { instance: 'nope' }))).toMatchObject({
      code: 'unknown_entity',
      message: "Instance 'nope' not known",
    });
    expect(failure(await shutdown(c, { instance: 'web3' })).message).toBe(
      "Instance 'web3' is marked to be offline, can't use instance from outside down, up states",
    );
    expect(configShape(c)).toEqual(cfg0);
  });

  test('an abort during the pre-hooks ends a start before any change and releases its memory reservation', async () => {
    const { c } = await h.cluster({ configure: markDown('web1') });
    c.hook('node2', 'instance-start', 'pre', '10-slow', 'sleep 2');
    const cfg0 = configShape(c);
    const hw0 = hardwareShape(c);
    const handle = await startStartup(h.env().client, { instance: 'web1' }, { cluster: c.name, snapshot: c.cfg() });
    await waitForProgress(handle, (p) => p.phase === 'pre-hooks');
    expect(c.cfg().reservations).not.toEqual({});
    await abortOperation(h.env().client, 'web1', 'wrong instance');
    const e = failure(await outcomeOf(operationResult(handle)));
    expect(e).toMatchObject({ type: 'Aborted' });
    expect(e.message).toContain('Start web1 on node1: aborted by the operator during pre-hooks (wrong instance); nothing was changed');
    expect(configShape(c)).toEqual(cfg0);
    expect(hardwareShape(c)).toEqual(hw0);
    expect(c.cfg().reservations).toEqual({});
  });

  test('an abort after the start began is refused: it rolls forward', async () => {
    const { c } = await h.cluster({ configure: markDown('web1') });
    c.hook('node1', 'instance-start', 'post', '10-slow', 'sleep 2');
    const handle = await startStartup(h.env().client, { instance: 'web1' }, { cluster: c.name, snapshot: c.cfg() });
    await waitForProgress(handle, (p) => p.phase === 'post-hooks');
    await expect(abortOperation(h.env().client, 'web1')).rejects.toBeInstanceOf(AbortRefusedError);
    expect((await outcomeOf(operationResult(handle))).ok).toBe(true);
    expect(started(c, 'web1')).toEqual([]);
  });

  test('start and shutdown exclude a running migration of the same instance, and show up as jobs', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 10 } });
    const m = await startMigration(h.env(), c, { instance: 'web1' });
    const s = await startup(c, { instance: 'web1' });
    expect(!s.ok && s.error).toBeInstanceOf(InstanceBusyError);
    expect(!s.ok && s.error.message).toContain('instance web1 is busy: migrate is running');
    await operationResult(m);

    const handle = await startShutdown(h.env().client, { instance: 'web1' }, { cluster: c.name, snapshot: c.cfg() });
    const m2 = await outcomeOf(startMigration(h.env(), c, { instance: 'web1' }).then((x) => operationResult(x)));
    expect(!m2.ok && m2.error.message).toContain('instance web1 is busy: shutdown is running');
    await operationResult(handle);
    const d = await handle.describe();
    expect(await d.staticSummary()).toBe('Shut down web1 on node2, timeout 120 s');
    expect(d.typedSearchAttributes.get(SA.operation)).toBe('shutdown');
    expect(d.typedSearchAttributes.get(SA.sourceNode)).toBe('node2');
    expect(d.typedSearchAttributes.get(SA.phase)).toBe('done');
    const meta = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
    expect(meta.currentDetails).toContain('### Shutdown of web1 on node2');
    expect((await listJobs(h.env().client)).map((j) => `${j.type} ${j.operation}`)).toContain('shutdownInstanceWorkflow shutdown');
    expect(stopped(c, 'web1')).toEqual([]);
  });
});

/** A hook that records its exact environment (a Node script: no shell adds variables). */
function envHook(c: TestCluster, node: string, path: HookPath, phase: HookPhase, out: string): void {
  c.hook(
    node,
    path,
    phase,
    '50-env',
    `#!${process.execPath}\nrequire('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.env));\n`,
  );
}
const envOf = (f: string): Record<string, string> => JSON.parse(readFileSync(f, 'utf8')) as Record<string, string>;

describe('hooks', () => {
  test('instance-start runs on the master, primary and secondary with the startup environment', async () => {
    const { c } = await h.cluster({ configure: markDown('web2') });
    const trace = join(c.home, 'trace.txt');
    for (const node of ['node1', 'node2', 'node3']) {
      for (const phase of ['pre', 'post'] as const)
        c.hook(node, 'instance-start', phase, '20-trace', `echo "${node} ${phase}" >> ${trace}`);
    }
    const pre = join(c.home, 'pre.json');
    const post = join(c.home, 'post.json');
    envHook(c, 'node2', 'instance-start', 'pre', pre);
    envHook(c, 'node2', 'instance-start', 'post', post);
    expect((await startup(c, { instance: 'web2' })).ok).toBe(true);
    // web2: primary node2, secondary node3; node1 is the master.
    expect(readFileSync(trace, 'utf8').trim().split('\n').sort()).toEqual([
      'node1 post',
      'node1 pre',
      'node2 post',
      'node2 pre',
      'node3 post',
      'node3 pre',
    ]);
    expect(envOf(pre)).toMatchObject({
      GANETI_HOOKS_PATH: 'instance-start',
      GANETI_HOOKS_PHASE: 'pre',
      GANETI_OP_CODE: 'OP_INSTANCE_STARTUP',
      GANETI_FORCE: 'False',
      GANETI_INSTANCE_NAME: 'web2',
      GANETI_INSTANCE_PRIMARY: 'node2',
      GANETI_INSTANCE_SECONDARIES: 'node3',
      GANETI_INSTANCE_STATUS: 'down',
    });
    expect(envOf(post)).toMatchObject({ GANETI_HOOKS_PHASE: 'post', GANETI_INSTANCE_STATUS: 'down', GANETI_POST_INSTANCE_STATUS: 'up' });
    expect(envOf(pre)).not.toHaveProperty('GANETI_OLD_PRIMARY');
    expect(started(c, 'web2')).toEqual([]);
  });

  test('instance-stop gets TIMEOUT; a failing pre-hook vetoes the shutdown before any change', async () => {
    const { c } = await h.cluster();
    const pre = join(c.home, 'pre.json');
    envHook(c, 'node1', 'instance-stop', 'pre', pre);
    expect((await shutdown(c, { instance: 'web1', timeout: 7, dryRun: true })).ok).toBe(true);
    expect(envOf(pre)).toMatchObject({ GANETI_OP_CODE: 'OP_INSTANCE_SHUTDOWN', GANETI_TIMEOUT: '7', GANETI_INSTANCE_STATUS: 'up' });

    c.hook('node2', 'instance-stop', 'pre', '10-veto', 'echo "not now"; exit 1');
    const cfg0 = configShape(c);
    const hw0 = hardwareShape(c);
    const e = failure(await shutdown(c, { instance: 'web1' }));
    expect(e).toMatchObject({
      type: 'HooksFailed',
      message: 'hooks execution failed:\n  node: node2, script: instance-stop-pre.d/10-veto, output: not now',
    });
    expect(configShape(c)).toEqual(cfg0);
    expect(hardwareShape(c)).toEqual(hw0);
    expect(existsSync(pre)).toBe(true);
    expect(started(c, 'web1')).toEqual([]);
  });
});
