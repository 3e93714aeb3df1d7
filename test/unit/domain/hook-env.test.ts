/**
 * Ganeti's hooks as pure functions (domain/hook-env.ts, behaviour spec §9): which nodes run them and
 * the exact environment each phase gets. The server-backed test/workflows/hooks.test.ts checks the
 * same through real scripts; these pin every branch without a server.
 */
import { describe, expect, test } from 'vitest';
import {
  HOOK_NAME_RE,
  HOOK_OP_CODES,
  HOOK_PATHS,
  HOOK_PATH_ENV,
  commonHookEnv,
  hookEnvironment,
  hookNodes,
  instanceHookEnv,
  operationHookEnv,
  pyStr,
} from '../../../domain/hook-env.js';
import type { ClusterConfig, Instance } from '../../../domain/types.js';
import { defaultClusterConfig } from '../../../adapters/sim/cluster.js';

function cluster(): ClusterConfig {
  return structuredClone(defaultClusterConfig());
}

function inst(cfg: ClusterConfig, name: string): Instance {
  const i = cfg.instances[name];
  if (!i) throw new Error(`no instance ${name}`);
  return i;
}

/** web1's instance keys (DRBD node1/node2, one bridged NIC, one disk), unprefixed. */
const WEB1 = {
  OP_TARGET: 'web1',
  INSTANCE_NAME: 'web1',
  INSTANCE_PRIMARY: 'node1',
  INSTANCE_SECONDARIES: 'node2',
  INSTANCE_OS_TYPE: 'debootstrap+default',
  INSTANCE_STATUS: 'up',
  INSTANCE_MINMEM: 512,
  INSTANCE_MAXMEM: 1024,
  INSTANCE_MEMORY: 1024,
  INSTANCE_VCPUS: 2,
  INSTANCE_DISK_TEMPLATE: 'drbd',
  INSTANCE_HYPERVISOR: 'kvm',
  INSTANCE_NIC_COUNT: 1,
  INSTANCE_DISK_COUNT: 1,
  INSTANCE_TAGS: '',
  INSTANCE_NIC0_UUID: 'nic-1',
  INSTANCE_NIC0_IP: '',
  INSTANCE_NIC0_MAC: 'aa:00:00:00:00:01',
  INSTANCE_NIC0_MODE: 'bridged',
  INSTANCE_NIC0_LINK: 'br0',
  INSTANCE_NIC0_VLAN: '',
  INSTANCE_NIC0_BRIDGE: 'br0',
  INSTANCE_DISK0_UUID: 'disk-1-0',
  INSTANCE_DISK0_SIZE: 10240,
  INSTANCE_DISK0_MODE: 'rw',
  INSTANCE_DISK0_DEV_TYPE: 'drbd',
  INSTANCE_DISK0_PNODE: 'node1',
  INSTANCE_DISK0_SNODE: 'node2',
  INSTANCE_DISK0_PORT: 11000,
  INSTANCE_DISK0_PMINOR: 0,
  INSTANCE_DISK0_SMINOR: 0,
  INSTANCE_DISK0_DATA_VG: 'xenvg',
  INSTANCE_DISK0_DATA_ID: 'disk-1-0.disk0_data',
  INSTANCE_DISK0_META_VG: 'xenvg',
  INSTANCE_DISK0_META_ID: 'disk-1-0.disk0_meta',
  INSTANCE_BE_minmem: 512,
  INSTANCE_BE_maxmem: 1024,
  INSTANCE_BE_vcpus: 2,
  INSTANCE_BE_always_failover: false,
  INSTANCE_BE_auto_balance: true,
  INSTANCE_HV_migration_mode: 'live',
  INSTANCE_HV_migration_bandwidth: 32,
  INSTANCE_HV_migration_downtime: 30,
};

describe('hook nodes (§9.1)', () => {
  test('migrate: master, primary, secondaries and target, the same list before and after', () => {
    const cfg = cluster();
    // web2: node2 → node3; the master is node1.
    const web2 = inst(cfg, 'web2');
    expect(hookNodes('instance-migrate', cfg, web2, 'node2', 'node3')).toEqual({
      pre: ['node1', 'node2', 'node3'],
      post: ['node1', 'node2', 'node3'],
    });
    // web1: node1 (the master) → node2: each node once.
    expect(hookNodes('instance-migrate', cfg, inst(cfg, 'web1'), 'node1', 'node2')).toEqual({
      pre: ['node1', 'node2'],
      post: ['node1', 'node2'],
    });
  });

  test('failover: the pre list leaves out the source, the post list adds it', () => {
    const cfg = cluster();
    expect(hookNodes('instance-failover', cfg, inst(cfg, 'web2'), 'node2', 'node3')).toEqual({
      pre: ['node1', 'node3'],
      post: ['node1', 'node3', 'node2'],
    });
    // A sharedfile instance has no secondaries: master and target, then the source.
    expect(hookNodes('instance-failover', cfg, inst(cfg, 'files1'), 'node2', 'node1')).toEqual({
      pre: ['node1'],
      post: ['node1', 'node2'],
    });
  });

  test('start and stop: master, primary and secondaries, the same list before and after', () => {
    const cfg = cluster();
    for (const path of ['instance-start', 'instance-stop'] as const) {
      expect(hookNodes(path, cfg, inst(cfg, 'web2'), 'node2', 'node2')).toEqual({
        pre: ['node1', 'node2', 'node3'],
        post: ['node1', 'node2', 'node3'],
      });
      expect(hookNodes(path, cfg, inst(cfg, 'files1'), 'node2', 'node2')).toEqual({ pre: ['node1', 'node2'], post: ['node1', 'node2'] });
    }
  });
});

describe('the instance keys', () => {
  test('of a DRBD instance: instance, NIC, disk (with its DRBD and LV names), be and filled hv parameters', () => {
    const cfg = cluster();
    expect(instanceHookEnv(cfg, inst(cfg, 'web1'))).toEqual(WEB1);
  });

  test('name NICs and disks that have names, IPs, every disk, tag and secondary', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    web1.tags = ['a', 'b'];
    web1.nics = [
      { ...web1.nics[0]!, name: 'eth0', ip: '192.0.2.50', vlan: '.100' },
      { uuid: 'nic-9', mac: 'aa:00:00:00:00:09', mode: 'routed', link: 'table5', vlan: '' },
      { uuid: 'nic-10', mac: 'aa:00:00:00:00:0a', mode: 'openvswitch', link: 'ovs0', vlan: '' },
    ];
    web1.disks[0] = { ...web1.disks[0]!, name: 'root', mode: 'ro' };
    web1.disks.push({
      uuid: 'disk-1-1',
      size: 1024,
      mode: 'rw',
      drbd: { nodes: ['node1', 'node3'], minors: [5, 6], port: 11009, secret: 's' },
    });
    const env = instanceHookEnv(cfg, web1);
    expect(env).toMatchObject({
      INSTANCE_SECONDARIES: 'node2 node3',
      INSTANCE_DISK_COUNT: 2,
      INSTANCE_DISK1_SNODE: 'node3',
      INSTANCE_TAGS: 'a b',
      INSTANCE_NIC_COUNT: 3,
      INSTANCE_NIC0_NAME: 'eth0',
      INSTANCE_NIC0_IP: '192.0.2.50',
      INSTANCE_NIC0_VLAN: '.100',
      INSTANCE_NIC1_MODE: 'routed',
      INSTANCE_NIC1_LINK: 'table5',
      INSTANCE_NIC2_MODE: 'openvswitch',
      INSTANCE_NIC2_BRIDGE: 'ovs0',
      INSTANCE_DISK0_NAME: 'root',
      INSTANCE_DISK0_MODE: 'ro',
    });
    // A routed NIC has no bridge; unnamed NICs get no NAME key.
    expect(env).not.toHaveProperty('INSTANCE_NIC1_BRIDGE');
    expect(env).not.toHaveProperty('INSTANCE_NIC1_NAME');
    expect(env).not.toHaveProperty('INSTANCE_NIC2_NAME');
  });

  test('keep the DRBD logical id’s creation order after a migration', () => {
    const cfg = cluster();
    const web1 = { ...inst(cfg, 'web1'), primaryNode: 'node2' };
    expect(instanceHookEnv(cfg, web1)).toMatchObject({
      INSTANCE_PRIMARY: 'node2',
      INSTANCE_SECONDARIES: 'node1',
      INSTANCE_DISK0_PNODE: 'node1',
      INSTANCE_DISK0_SNODE: 'node2',
    });
  });

  test('of a sharedfile, file or plain instance describe the backing storage, with no DRBD keys', () => {
    const cfg = cluster();
    const files1 = inst(cfg, 'files1');
    const shared = instanceHookEnv(cfg, files1);
    expect(shared).toMatchObject({
      INSTANCE_SECONDARIES: '',
      INSTANCE_DISK0_DEV_TYPE: 'sharedfile',
      INSTANCE_DISK0_DRIVER: 'loop',
      INSTANCE_DISK0_ID: 'files1/disk0.img',
    });
    const diskKeys = (env: Record<string, unknown>) => Object.keys(env).filter((k) => k.startsWith('INSTANCE_DISK0_'));
    expect(diskKeys(shared)).toEqual([
      'INSTANCE_DISK0_UUID',
      'INSTANCE_DISK0_SIZE',
      'INSTANCE_DISK0_MODE',
      'INSTANCE_DISK0_DEV_TYPE',
      'INSTANCE_DISK0_DRIVER',
      'INSTANCE_DISK0_ID',
    ]);
    const file = instanceHookEnv(cfg, { ...files1, diskTemplate: 'file' });
    expect(file).toMatchObject({ INSTANCE_DISK0_DRIVER: 'loop', INSTANCE_DISK0_ID: 'files1/disk0.img' });
    const noPath = instanceHookEnv(cfg, { ...files1, disks: [{ uuid: 'd', size: 1, mode: 'rw' }] });
    expect(noPath.INSTANCE_DISK0_ID).toBe('');
    const plain = instanceHookEnv(cfg, { ...files1, diskTemplate: 'plain', disks: [{ uuid: 'd', size: 1, mode: 'rw' }] });
    expect(plain).toMatchObject({ INSTANCE_DISK0_VG: 'xenvg', INSTANCE_DISK0_ID: 'd.disk0' });
    expect(plain).not.toHaveProperty('INSTANCE_DISK0_DRIVER');
    expect(diskKeys(plain)).toHaveLength(6);
  });
});

describe('the operation keys', () => {
  test('of a migration describe the move in both phases and the migration flags', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    const env = operationHookEnv(
      cfg,
      web1,
      { source: 'node1', target: 'node2' },
      { path: 'instance-migrate', live: false, cleanup: true, allowRuntimeChanges: false },
    );
    expect(env).toEqual({
      ...WEB1,
      MIGRATE_LIVE: false,
      MIGRATE_CLEANUP: true,
      OLD_PRIMARY: 'node1',
      NEW_PRIMARY: 'node2',
      OLD_SECONDARY: 'node2',
      NEW_SECONDARY: 'node1',
      ALLOW_RUNTIME_CHANGES: false,
    });
    // After the move (the reloaded instance) the move keys are unchanged.
    const after = operationHookEnv(
      cfg,
      { ...web1, primaryNode: 'node2' },
      { source: 'node1', target: 'node2' },
      { path: 'instance-migrate', live: true, cleanup: false, allowRuntimeChanges: true },
    );
    expect(after).toMatchObject({ INSTANCE_PRIMARY: 'node2', OLD_PRIMARY: 'node1', NEW_PRIMARY: 'node2', MIGRATE_LIVE: true });
  });

  test('of a failover carry the failover flags; a sharedfile move has no secondaries', () => {
    const cfg = cluster();
    const env = operationHookEnv(
      cfg,
      inst(cfg, 'files1'),
      { source: 'node2', target: 'node3' },
      { path: 'instance-failover', ignoreConsistency: true, shutdownTimeout: 30 },
    );
    expect(env).toMatchObject({
      IGNORE_CONSISTENCY: true,
      SHUTDOWN_TIMEOUT: 30,
      OLD_PRIMARY: 'node2',
      NEW_PRIMARY: 'node3',
      OLD_SECONDARY: '',
      NEW_SECONDARY: '',
      FAILOVER_CLEANUP: false,
    });
    expect(env).not.toHaveProperty('MIGRATE_LIVE');
    expect(env).not.toHaveProperty('ALLOW_RUNTIME_CHANGES');
  });

  test('of a start carry FORCE, of a stop TIMEOUT, and no move keys', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    const move = { source: 'node1', target: 'node1' };
    const start = operationHookEnv(cfg, web1, move, { path: 'instance-start', force: false });
    const stop = operationHookEnv(cfg, web1, move, { path: 'instance-stop', timeout: 30 });
    expect(start).toMatchObject({ FORCE: false, INSTANCE_NAME: 'web1', INSTANCE_PRIMARY: 'node1', INSTANCE_STATUS: 'up' });
    expect(stop).toMatchObject({ TIMEOUT: 30, INSTANCE_NAME: 'web1' });
    for (const env of [start, stop]) {
      expect(env).not.toHaveProperty('OLD_PRIMARY');
      expect(env).not.toHaveProperty('SHUTDOWN_TIMEOUT');
    }
    expect(stop).not.toHaveProperty('FORCE');
  });
});

describe('the environment of a phase', () => {
  test('values print as Python’s str() would', () => {
    expect(pyStr(true)).toBe('True');
    expect(pyStr(false)).toBe('False');
    expect(pyStr(null)).toBe('None');
    expect(pyStr(undefined)).toBe('None');
    expect(pyStr(0)).toBe('0');
    expect(pyStr('')).toBe('');
    expect(pyStr('node1')).toBe('node1');
  });

  test('the common keys name the hooks version, opcode, phase, path, cluster and master', () => {
    const cfg = cluster();
    expect(commonHookEnv(cfg, 'instance-failover', 'post')).toEqual({
      GANETI_HOOKS_VERSION: '2',
      GANETI_OP_CODE: 'OP_INSTANCE_FAILOVER',
      GANETI_HOOKS_PHASE: 'post',
      GANETI_HOOKS_PATH: 'instance-failover',
      GANETI_OBJECT_TYPE: 'INSTANCE',
      GANETI_CLUSTER: 'ganeti-sim',
      GANETI_MASTER: 'node1',
    });
    expect(HOOK_OP_CODES).toEqual({
      'instance-migrate': 'OP_INSTANCE_MIGRATE',
      'instance-failover': 'OP_INSTANCE_FAILOVER',
      'instance-start': 'OP_INSTANCE_STARTUP',
      'instance-stop': 'OP_INSTANCE_SHUTDOWN',
    });
    expect(HOOK_PATHS).toEqual(['instance-migrate', 'instance-failover', 'instance-start', 'instance-stop']);
  });

  test('pre gets GANETI_ keys only; post adds GANETI_POST_ keys', () => {
    const cfg = cluster();
    const pre = { OLD_PRIMARY: 'node1', MIGRATE_LIVE: true, X: null };
    const post = { OLD_PRIMARY: 'node1', INSTANCE_PRIMARY: 'node2' };
    const common = commonHookEnv(cfg, 'instance-migrate', 'pre');
    expect(hookEnvironment(cfg, 'instance-migrate', 'pre', pre, post)).toEqual({
      ...common,
      GANETI_OLD_PRIMARY: 'node1',
      GANETI_MIGRATE_LIVE: 'True',
      GANETI_X: 'None',
    });
    expect(hookEnvironment(cfg, 'instance-migrate', 'post', pre, post)).toEqual({
      ...commonHookEnv(cfg, 'instance-migrate', 'post'),
      GANETI_OLD_PRIMARY: 'node1',
      GANETI_MIGRATE_LIVE: 'True',
      GANETI_X: 'None',
      GANETI_POST_OLD_PRIMARY: 'node1',
      GANETI_POST_INSTANCE_PRIMARY: 'node2',
    });
    // A post phase without a post environment (the operation did not reload the instance).
    expect(hookEnvironment(cfg, 'instance-migrate', 'post', pre)).toEqual({
      ...commonHookEnv(cfg, 'instance-migrate', 'post'),
      GANETI_OLD_PRIMARY: 'node1',
      GANETI_MIGRATE_LIVE: 'True',
      GANETI_X: 'None',
    });
  });

  test('hooks get a fixed PATH, and only scripts with plain names run', () => {
    expect(HOOK_PATH_ENV).toBe('/sbin:/bin:/usr/sbin:/usr/bin');
    for (const ok of ['10-notify', 'a_b', 'Z9']) expect(HOOK_NAME_RE.test(ok)).toBe(true);
    for (const bad of ['', 'x.sh', 'a b', '.hidden', 'x~', 'ok\nbad']) expect(HOOK_NAME_RE.test(bad)).toBe(false);
  });
});
