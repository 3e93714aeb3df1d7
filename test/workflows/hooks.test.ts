/**
 * Hooks (docs/behaviour.md §9 "Hooks"): real scripts in each node's hooks directory, run by that node's agent.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { failoverInstance } from '../../client/api.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import type { HookPath, HookPhase } from '../../domain/hook-env.js';
import { setPower } from '../../adapters/sim/cluster.js';
import type { TestCluster } from '../helpers/cluster.js';
import { configShape, hardwareShape, migrate, outcomeOf, useHarness } from '../helpers/harness.js';
import { mutatingSteps } from '../helpers/steps.js';

const h = useHarness();

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

/** A hook on every node appending "<node> <phase>" to one file. */
function traceHooks(c: TestCluster, path: HookPath, out: string): void {
  for (const node of ['node1', 'node2', 'node3']) {
    for (const phase of ['pre', 'post'] as const) c.hook(node, path, phase, '20-trace', `echo "${node} ${phase}" >> ${out}`);
  }
}

const traced = (out: string): string[] => (existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n').sort() : []);

describe('pre-hooks', () => {
  test('a failing pre-hook vetoes the operation before any change, naming node, script and output', async () => {
    const { c } = await h.cluster();
    c.hook('node2', 'instance-migrate', 'pre', '10-veto', 'echo "not today"; echo "maintenance window closed" >&2; exit 1');
    c.hook('node1', 'instance-migrate', 'pre', '20-quiet', 'exit 3');
    const cfg0 = configShape(c);
    const hw0 = hardwareShape(c);
    const r = await migrate(h.env(), c, { instance: 'web1' });
    expect(!r.ok && r.error).toMatchObject({
      type: 'HooksFailed',
      message: [
        'hooks execution failed:',
        '  node: node1, script: instance-migrate-pre.d/20-quiet, output: (no output)',
        '  node: node2, script: instance-migrate-pre.d/10-veto, output: not today\nmaintenance window closed',
      ].join('\n'),
    });
    expect(configShape(c)).toEqual(cfg0);
    expect(hardwareShape(c)).toEqual(hw0);
    expect(c.cfg().reservations).toEqual({});
    expect(mutatingSteps(c, 'web1')).toEqual([]);
  });

  test('a pre-hook that outlives its timeout fails and vetoes', async () => {
    const { c } = await h.cluster({ timing: { hookTimeoutSec: 1 } });
    c.hook('node2', 'instance-migrate', 'pre', '10-slow', 'echo started; sleep 30');
    const r = await migrate(h.env(), c, { instance: 'web1' });
    expect(!r.ok && r.error.message).toBe(
      'hooks execution failed:\n  node: node2, script: instance-migrate-pre.d/10-slow, output: started\n(timed out after 1 s)',
    );
    expect(c.instance('web1').primaryNode).toBe('node1');
  });

  test('only executable entries with plain names run, sorted by name, with stdin closed', async () => {
    const { c } = await h.cluster();
    const out = join(c.home, 'order.txt');
    c.hook('node1', 'instance-migrate', 'pre', '30-third', `echo 30 >> ${out}`);
    c.hook('node1', 'instance-migrate', 'pre', '10-first', `read x; echo "10 stdin=[$x]" >> ${out}`);
    c.hook('node1', 'instance-migrate', 'pre', '20_second', `echo 20 >> ${out}`);
    c.hook('node1', 'instance-migrate', 'pre', 'skipped.sh', `echo dot >> ${out}; exit 1`);
    c.hook('node1', 'instance-migrate', 'pre', '40-not-executable', `echo noexec >> ${out}; exit 1`, 0o644);
    c.hook('node1', 'instance-migrate', 'pre', '.hidden', `echo hidden >> ${out}; exit 1`);
    const r = await migrate(h.env(), c, { instance: 'web1', dryRun: true });
    expect(r.ok).toBe(true);
    expect(readFileSync(out, 'utf8')).toBe('10 stdin=[]\n20\n30\n');
  });

  test('an unreachable node is a warning, an offline node is skipped silently', async () => {
    const { c } = await h.cluster();
    const out = join(c.home, 'trace.txt');
    traceHooks(c, 'instance-migrate', out);
    // web2 (node2 → node3): hook nodes are the master node1, node2 and node3.
    await c.hw.mutate((s, now) => setPower(s, now, 'node1', false));
    const r = await migrate(h.env(), c, { instance: 'web2', dryRun: true });
    expect(r.ok && r.result.feedback).toContain(
      ' - WARNING: Communication failure to node node1: node node1 does not answer (powered off)',
    );
    expect(traced(out)).toEqual(['node2 pre', 'node3 pre']);
  });

  test('dry run runs the pre-hooks and changes nothing; a veto fails the dry run too', async () => {
    const { c } = await h.cluster();
    const out = join(c.home, 'trace.txt');
    traceHooks(c, 'instance-migrate', out);
    const hw0 = hardwareShape(c);
    const r = await migrate(h.env(), c, { instance: 'web1', dryRun: true });
    expect(r.ok && r.result.outcome).toBe('dry-run');
    expect(traced(out)).toEqual(['node1 pre', 'node2 pre']);
    expect(hardwareShape(c)).toEqual(hw0);
    c.hook('node2', 'instance-migrate', 'pre', '90-veto', 'exit 1');
    const v = await migrate(h.env(), c, { instance: 'web1', dryRun: true });
    expect(!v.ok && v.error.type).toBe('HooksFailed');
  });
});

describe('post-hooks', () => {
  test('a failing post-hook is only a warning', async () => {
    const { c } = await h.cluster();
    c.hook('node2', 'instance-migrate', 'post', '10-fail', 'echo oops; exit 1');
    const r = await migrate(h.env(), c, { instance: 'web1' });
    expect(r.ok && r.result.feedback.at(-1)).toBe(' - WARNING: On node2 script instance-migrate-post.d/10-fail failed, output: oops');
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('post-hooks do not run when the operation failed', async () => {
    const { c } = await h.cluster();
    const out = join(c.home, 'trace.txt');
    traceHooks(c, 'instance-migrate', out);
    await c.addFault({ rpc: 'instance_migrate', mode: 'permanent' });
    const r = await migrate(h.env(), c, { instance: 'web1' });
    expect(r.ok).toBe(false);
    expect(traced(out)).toEqual(['node1 pre', 'node2 pre']);
  });
});

describe('hook nodes', () => {
  test('migrate: master, primary, secondaries and target, the same before and after', async () => {
    const { c } = await h.cluster();
    const out = join(c.home, 'trace.txt');
    traceHooks(c, 'instance-migrate', out);
    expect((await migrate(h.env(), c, { instance: 'web2' })).ok).toBe(true);
    expect(traced(out)).toEqual(['node1 post', 'node1 pre', 'node2 post', 'node2 pre', 'node3 post', 'node3 pre']);
  });

  test('failover: the pre list excludes the source, the post list adds it', async () => {
    const { c } = await h.cluster();
    const out = join(c.home, 'trace.txt');
    traceHooks(c, 'instance-failover', out);
    const r = await outcomeOf(failoverInstance(h.env().client, { instance: 'web2' }, { cluster: c.name }));
    expect(r.ok).toBe(true);
    expect(traced(out)).toEqual(['node1 post', 'node1 pre', 'node2 post', 'node3 post', 'node3 pre']);
  });
});

describe('hook environment', () => {
  const common = (c: TestCluster, path: string, opCode: string, phase: string) => ({
    GANETI_HOOKS_VERSION: '2',
    GANETI_OP_CODE: opCode,
    GANETI_DATA_DIR: c.home,
    GANETI_HOOKS_PHASE: phase,
    GANETI_HOOKS_PATH: path,
    GANETI_OBJECT_TYPE: 'INSTANCE',
    GANETI_CLUSTER: c.name,
    GANETI_MASTER: 'node1',
    PATH: '/sbin:/bin:/usr/sbin:/usr/bin',
  });

  /** web1's instance keys with a prefix, for a given primary. */
  const web1 = (prefix: string, primary: string, secondary: string) => ({
    [`${prefix}OP_TARGET`]: 'web1',
    [`${prefix}INSTANCE_NAME`]: 'web1',
    [`${prefix}INSTANCE_PRIMARY`]: primary,
    [`${prefix}INSTANCE_SECONDARIES`]: secondary,
    [`${prefix}INSTANCE_OS_TYPE`]: 'debootstrap+default',
    [`${prefix}INSTANCE_STATUS`]: 'up',
    [`${prefix}INSTANCE_MINMEM`]: '512',
    [`${prefix}INSTANCE_MAXMEM`]: '1024',
    [`${prefix}INSTANCE_MEMORY`]: '1024',
    [`${prefix}INSTANCE_VCPUS`]: '2',
    [`${prefix}INSTANCE_DISK_TEMPLATE`]: 'drbd',
    [`${prefix}INSTANCE_HYPERVISOR`]: 'kvm',
    [`${prefix}INSTANCE_NIC_COUNT`]: '1',
    [`${prefix}INSTANCE_DISK_COUNT`]: '1',
    [`${prefix}INSTANCE_TAGS`]: '',
    [`${prefix}INSTANCE_NIC0_UUID`]: 'nic-1',
    [`${prefix}INSTANCE_NIC0_IP`]: '',
    [`${prefix}INSTANCE_NIC0_MAC`]: 'aa:00:00:00:00:01',
    [`${prefix}INSTANCE_NIC0_MODE`]: 'bridged',
    [`${prefix}INSTANCE_NIC0_LINK`]: 'br0',
    [`${prefix}INSTANCE_NIC0_VLAN`]: '',
    [`${prefix}INSTANCE_NIC0_BRIDGE`]: 'br0',
    [`${prefix}INSTANCE_DISK0_UUID`]: 'disk-1-0',
    [`${prefix}INSTANCE_DISK0_SIZE`]: '10240',
    [`${prefix}INSTANCE_DISK0_MODE`]: 'rw',
    [`${prefix}INSTANCE_DISK0_DEV_TYPE`]: 'drbd',
    [`${prefix}INSTANCE_DISK0_PNODE`]: 'node1',
    [`${prefix}INSTANCE_DISK0_SNODE`]: 'node2',
    [`${prefix}INSTANCE_DISK0_PORT`]: '11000',
    [`${prefix}INSTANCE_DISK0_PMINOR`]: '0',
    [`${prefix}INSTANCE_DISK0_SMINOR`]: '0',
    [`${prefix}INSTANCE_DISK0_DATA_VG`]: 'xenvg',
    [`${prefix}INSTANCE_DISK0_DATA_ID`]: 'disk-1-0.disk0_data',
    [`${prefix}INSTANCE_DISK0_META_VG`]: 'xenvg',
    [`${prefix}INSTANCE_DISK0_META_ID`]: 'disk-1-0.disk0_meta',
    [`${prefix}INSTANCE_BE_minmem`]: '512',
    [`${prefix}INSTANCE_BE_maxmem`]: '1024',
    [`${prefix}INSTANCE_BE_vcpus`]: '2',
    [`${prefix}INSTANCE_BE_always_failover`]: 'False',
    [`${prefix}INSTANCE_BE_auto_balance`]: 'True',
    [`${prefix}INSTANCE_HV_migration_mode`]: 'live',
    [`${prefix}INSTANCE_HV_migration_bandwidth`]: '32',
    [`${prefix}INSTANCE_HV_migration_downtime`]: '30',
  });

  const migrateKeys = (prefix: string) => ({
    [`${prefix}MIGRATE_LIVE`]: 'True',
    [`${prefix}MIGRATE_CLEANUP`]: 'False',
    [`${prefix}OLD_PRIMARY`]: 'node1',
    [`${prefix}NEW_PRIMARY`]: 'node2',
    [`${prefix}OLD_SECONDARY`]: 'node2',
    [`${prefix}NEW_SECONDARY`]: 'node1',
    [`${prefix}ALLOW_RUNTIME_CHANGES`]: 'True',
  });

  test('migrate: every key of the pre and post environment, and nothing else', async () => {
    const { c } = await h.cluster();
    const pre = join(c.home, 'pre.json');
    const post = join(c.home, 'post.json');
    envHook(c, 'node1', 'instance-migrate', 'pre', pre);
    envHook(c, 'node1', 'instance-migrate', 'post', post);
    expect((await migrate(h.env(), c, { instance: 'web1' })).ok).toBe(true);
    expect(JSON.parse(readFileSync(pre, 'utf8'))).toEqual({
      ...common(c, 'instance-migrate', 'OP_INSTANCE_MIGRATE', 'pre'),
      ...web1('GANETI_', 'node1', 'node2'),
      ...migrateKeys('GANETI_'),
    });
    // Post: the pre keys, plus GANETI_POST_ keys from the reloaded instance (now primary on node2).
    // OLD_/NEW_ PRIMARY/SECONDARY describe the move in both phases (Ganeti's post-phase quirk fixed).
    expect(JSON.parse(readFileSync(post, 'utf8'))).toEqual({
      ...common(c, 'instance-migrate', 'OP_INSTANCE_MIGRATE', 'post'),
      ...web1('GANETI_', 'node1', 'node2'),
      ...migrateKeys('GANETI_'),
      ...web1('GANETI_POST_', 'node2', 'node1'),
      ...migrateKeys('GANETI_POST_'),
    });
  });

  test('failover: the failover keys; non-live', async () => {
    const { c } = await h.cluster();
    const pre = join(c.home, 'pre.json');
    envHook(c, 'node1', 'instance-failover', 'pre', pre);
    const r = await outcomeOf(
      failoverInstance(h.env().client, { instance: 'web1', shutdownTimeout: 30, ignoreConsistency: true }, { cluster: c.name }),
    );
    expect(r.ok).toBe(true);
    expect(JSON.parse(readFileSync(pre, 'utf8'))).toEqual({
      ...common(c, 'instance-failover', 'OP_INSTANCE_FAILOVER', 'pre'),
      ...web1('GANETI_', 'node1', 'node2'),
      GANETI_IGNORE_CONSISTENCY: 'True',
      GANETI_SHUTDOWN_TIMEOUT: '30',
      GANETI_OLD_PRIMARY: 'node1',
      GANETI_NEW_PRIMARY: 'node2',
      GANETI_FAILOVER_CLEANUP: 'False',
      GANETI_OLD_SECONDARY: 'node2',
      GANETI_NEW_SECONDARY: 'node1',
    });
  });

  test('a migration that falls back to failover runs the migrate hooks with MIGRATE_LIVE False', async () => {
    const { c } = await h.cluster({ configure: (cfg) => void (cfg.instances.web1!.beparams.always_failover = true) });
    const pre = join(c.home, 'pre.json');
    envHook(c, 'node1', 'instance-migrate', 'pre', pre);
    const r = await migrate(h.env(), c, { instance: 'web1' });
    expect(r.ok && r.result.outcome).toBe('failed-over');
    const env = JSON.parse(readFileSync(pre, 'utf8')) as Record<string, string>;
    expect(env.GANETI_OP_CODE).toBe('OP_INSTANCE_MIGRATE');
    expect(env.GANETI_MIGRATE_LIVE).toBe('False');
    expect(env.GANETI_INSTANCE_BE_always_failover).toBe('True');
  });
});
