/**
 * The operation inputs (domain/ops.ts) and the cluster model (domain/types.ts) as their schemas
 * accept, refuse and complete them: Ganeti's defaults, the rules the configuration must keep, and
 * the one-line error an operator sees.
 */
import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { FailoverInputSchema, MigrateInputSchema, OUTCOMES, describeZodError } from '../../../domain/ops.js';
import {
  ClusterConfigSchema,
  DISK_TEMPLATES,
  DiskSchema,
  EXT_MIRROR_TEMPLATES,
  INT_MIRROR_TEMPLATES,
  InstanceSchema,
  IPolicySchema,
  NAME_RE,
  NicSchema,
  NodeGroupSchema,
  NodeSchema,
  TimingSchema,
  type Instance,
} from '../../../domain/types.js';

/** The one-line error of a refused input, or null when it is accepted. */
function refusal(schema: z.ZodType, input: unknown): string | null {
  const r = schema.safeParse(input);
  return r.success ? null : describeZodError(r.error);
}

/** The codes of the issues of a refused input (a rule of the model is a `custom` issue). */
function issueCodes(schema: z.ZodType, input: unknown): string[] {
  const r = schema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => i.code);
}

describe('migrate input (OpInstanceMigrate)', () => {
  test('fills Ganeti’s defaults and leaves mode, live and target unset', () => {
    expect(MigrateInputSchema.parse({ instance: 'web1' })).toEqual({
      instance: 'web1',
      cleanup: false,
      allowFailover: false,
      allowRuntimeChanges: true,
      ignoreIpolicy: false,
      ignoreHvversions: false,
      dryRun: false,
      reason: '',
    });
  });

  test('accepts mode or live, not both', () => {
    expect(refusal(MigrateInputSchema, { instance: 'web1', mode: 'non-live' })).toBeNull();
    expect(refusal(MigrateInputSchema, { instance: 'web1', live: false })).toBeNull();
    expect(refusal(MigrateInputSchema, { instance: 'web1', mode: 'live', live: true })).toBe(
      "mode: Only one of the 'live' and 'mode' parameters are accepted",
    );
    expect(refusal(MigrateInputSchema, { instance: 'web1', mode: 'fast' })).toMatch(/^mode: /);
  });

  test('refuses unknown keys, names that are not host-style and over-long reasons', () => {
    expect(refusal(MigrateInputSchema, { instance: 'web1', force: true })).toMatch(/force/);
    expect(refusal(MigrateInputSchema, { instance: '-web1' })).toBe(
      'instance: must be a host-style name (letters, digits, ".", "_", "-"; no "..")',
    );
    expect(refusal(MigrateInputSchema, { instance: 'web1', targetNode: 'node 2' })).toBe(
      'targetNode: must be a host-style name (letters, digits, ".", "_", "-"; no "..")',
    );
    expect(refusal(MigrateInputSchema, { instance: 'web1', reason: 'x'.repeat(1000) })).toBeNull();
    expect(refusal(MigrateInputSchema, { instance: 'web1', reason: 'x'.repeat(1001) })).toMatch(/^reason: /);
  });
});

describe('failover input (OpInstanceFailover)', () => {
  test('fills Ganeti’s defaults: a 120 s shutdown timeout, consistency checked', () => {
    expect(FailoverInputSchema.parse({ instance: 'web1' })).toEqual({
      instance: 'web1',
      shutdownTimeout: 120,
      ignoreConsistency: false,
      ignoreIpolicy: false,
      dryRun: false,
      reason: '',
    });
  });

  test('the shutdown timeout is a whole number of seconds, zero allowed', () => {
    expect(refusal(FailoverInputSchema, { instance: 'web1', shutdownTimeout: 0 })).toBeNull();
    expect(refusal(FailoverInputSchema, { instance: 'web1', shutdownTimeout: -1 })).toMatch(/^shutdownTimeout: /);
    expect(refusal(FailoverInputSchema, { instance: 'web1', shutdownTimeout: 1.5 })).toMatch(/^shutdownTimeout: /);
    expect(refusal(FailoverInputSchema, { instance: 'web1', live: true })).toMatch(/live/);
    expect(refusal(FailoverInputSchema, { instance: 'web1', reason: 'x'.repeat(1001) })).toMatch(/^reason: /);
  });

  test('the outcomes an operation reports', () => {
    expect(OUTCOMES).toEqual(['migrated', 'failed-over', 'cleaned-up', 'started', 'stopped', 'dry-run']);
  });
});

describe('describeZodError', () => {
  test('joins the issues, each prefixed with its dotted path when it has one', () => {
    const schema = z.object({ a: z.object({ b: z.number() }), c: z.string() }).refine(() => false, { message: 'whole' });
    expect(refusal(schema, { a: { b: 'x' }, c: 1 })).toBe(
      'a.b: Invalid input: expected number, received string; c: Invalid input: expected string, received number',
    );
    expect(refusal(schema, { a: { b: 1 }, c: '' })).toBe('whole');
  });
});

// ---- the cluster model -----------------------------------------------------------------------------

const NODE = { name: 'node1', uuid: 'u1', primaryIp: '192.0.2.11', secondaryIp: '198.51.100.11', memoryTotal: 16384, hvVersion: '7.2' };
const DRBD = { nodes: ['node1', 'node2'], minors: [0, 0], port: 11000, secret: 's' };

function instanceInput(change: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'web1',
    uuid: 'i1',
    diskTemplate: 'drbd',
    primaryNode: 'node1',
    disks: [{ uuid: 'd1', size: 1024, drbd: DRBD }],
    adminState: 'up',
    disksActive: true,
    beparams: { minmem: 512, maxmem: 1024, vcpus: 2 },
    ...change,
  };
}

describe('the cluster model', () => {
  test('a minimal configuration is completed with Ganeti’s defaults', () => {
    const cfg = ClusterConfigSchema.parse({
      version: 1,
      serial: 0,
      cluster: { name: 'c1', uuid: 'c', masterNode: 'node1' },
      nodes: { node1: NODE },
      instances: { web1: instanceInput() },
    });
    expect(cfg.cluster).toEqual({
      name: 'c1',
      uuid: 'c',
      masterNode: 'node1',
      hvparams: { migration_mode: 'live', migration_bandwidth: 32, migration_downtime: 30 },
      defaultIallocator: 'hail',
      groups: {},
      timing: {
        rpcTimeouts: { urgent: 60, normal: 900, slow: 3600 },
        rpcHeartbeatTimeoutSec: 15,
        heartbeatTimeoutSec: 30,
        scheduleToStartSec: 300,
        retryInitialIntervalMs: 1000,
        retryMaximumIntervalMs: 30_000,
        retryMaximumAttempts: 5,
        migrationPollMs: 1000,
        migrationProgressMs: 10_000,
        syncPollMs: 2000,
        hookTimeoutSec: 300,
      },
      evacuation: { maxConcurrent: 5, maxOutgoing: 2, maxIncoming: 2 },
      migrationPolicy: {
        autoConverge: false,
        postcopy: false,
        completionTimeoutSecPerGiB: 800,
        progressTimeoutSec: 150,
        onTimeout: 'abort',
      },
    });
    expect(cfg.nodes.node1).toEqual({ ...NODE, offline: false, drained: false, vmCapable: true, group: 'default' });
    const expected: Instance = {
      name: 'web1',
      uuid: 'i1',
      hypervisor: 'kvm',
      os: 'debootstrap+default',
      diskTemplate: 'drbd',
      primaryNode: 'node1',
      disks: [{ uuid: 'd1', size: 1024, mode: 'rw', drbd: { nodes: ['node1', 'node2'], minors: [0, 0], port: 11000, secret: 's' } }],
      adminState: 'up',
      disksActive: true,
      forthcoming: false,
      beparams: { minmem: 512, maxmem: 1024, vcpus: 2, always_failover: false, auto_balance: true },
      hvparams: {},
      nics: [],
      tags: [],
    };
    expect(cfg.instances.web1).toEqual(expected);
    expect(cfg.reservations).toEqual({});
  });

  test('a group’s default instance policy allows every template, up to 1 TiB and 64 vCPUs', () => {
    expect(IPolicySchema.parse({})).toEqual({
      minmem: 0,
      maxmem: 1024 * 1024,
      maxVcpus: 64,
      diskTemplates: ['drbd', 'sharedfile', 'plain', 'file'],
    });
    expect(NodeGroupSchema.parse({ name: 'g1' })).toEqual({ name: 'g1', ipolicy: IPolicySchema.parse({}) });
    expect(DISK_TEMPLATES).toEqual(['drbd', 'sharedfile', 'plain', 'file']);
    expect(INT_MIRROR_TEMPLATES).toEqual(['drbd']);
    expect(EXT_MIRROR_TEMPLATES).toEqual(['sharedfile']);
  });

  test('timings may be shortened but must stay positive', () => {
    expect(TimingSchema.parse({ syncPollMs: 10 }).syncPollMs).toBe(10);
    expect(refusal(TimingSchema, { syncPollMs: 0 })).toMatch(/^syncPollMs: /);
    expect(refusal(TimingSchema, { rpcTimeouts: { urgent: 0 } })).toMatch(/^rpcTimeouts\.urgent: /);
  });

  test('minmem may not exceed maxmem', () => {
    expect(refusal(InstanceSchema, instanceInput({ beparams: { minmem: 1024, maxmem: 1024, vcpus: 1 } }))).toBeNull();
    expect(refusal(InstanceSchema, instanceInput({ beparams: { minmem: 1025, maxmem: 1024, vcpus: 1 } }))).toBe(
      'beparams: minmem must not exceed maxmem',
    );
    expect(issueCodes(InstanceSchema, instanceInput({ beparams: { minmem: 1025, maxmem: 1024, vcpus: 1 } }))).toEqual(['custom']);
    expect(refusal(InstanceSchema, instanceInput({ beparams: { minmem: 1, maxmem: 1, vcpus: 0 } }))).toMatch(/^beparams\.vcpus: /);
  });

  test('a DRBD disk needs a logical id spanning the primary and one other node', () => {
    expect(refusal(InstanceSchema, instanceInput({ disks: [{ uuid: 'd1', size: 1 }] }))).toBe('disks.0: drbd disk without logical id');
    expect(issueCodes(InstanceSchema, instanceInput({ disks: [{ uuid: 'd1', size: 1 }] }))).toEqual(['custom']);
    expect(
      issueCodes(InstanceSchema, instanceInput({ disks: [{ uuid: 'd1', size: 1, drbd: { ...DRBD, nodes: ['node2', 'node3'] } }] })),
    ).toEqual(['custom']);
    const span = 'drbd disk must span the primary and one distinct secondary';
    expect(refusal(InstanceSchema, instanceInput({ disks: [{ uuid: 'd1', size: 1, drbd: { ...DRBD, nodes: ['node2', 'node3'] } }] }))).toBe(
      `disks.0: ${span}`,
    );
    expect(refusal(InstanceSchema, instanceInput({ disks: [{ uuid: 'd1', size: 1, drbd: { ...DRBD, nodes: ['node1', 'node1'] } }] }))).toBe(
      `disks.0: ${span}`,
    );
    // The primary may be either side.
    expect(
      refusal(InstanceSchema, instanceInput({ disks: [{ uuid: 'd1', size: 1, drbd: { ...DRBD, nodes: ['node2', 'node1'] } }] })),
    ).toBeNull();
    expect(refusal(InstanceSchema, instanceInput({ disks: [{ uuid: 'd1', size: 1, drbd: { ...DRBD, port: 0 } }] }))).toMatch(/port/);
    expect(refusal(InstanceSchema, instanceInput({ disks: [{ uuid: 'd1', size: 1, drbd: { ...DRBD, port: 65536 } }] }))).toMatch(/port/);
  });

  test('the stored configuration keeps the shared secret of every DRBD disk', () => {
    const config = (...disks: Record<string, unknown>[]) => ({
      version: 1,
      serial: 0,
      cluster: { name: 'c1', uuid: 'c', masterNode: 'node1' },
      nodes: { node1: NODE },
      instances: { web1: instanceInput({ disks }) },
    });
    const noSecret = { uuid: 'd2', size: 1, drbd: { ...DRBD, secret: undefined } };
    expect(refusal(ClusterConfigSchema, config({ uuid: 'd1', size: 1, drbd: DRBD }))).toBeNull();
    expect(refusal(ClusterConfigSchema, config({ uuid: 'd1', size: 1, drbd: DRBD }, noSecret))).toBe(
      'instances.web1.disks.1.drbd: drbd disk without its secret',
    );
    expect(issueCodes(ClusterConfigSchema, config(noSecret))).toEqual(['custom']);
    expect(refusal(ClusterConfigSchema, config({ uuid: 'd1', size: 1, drbd: { ...DRBD, secret: '' } }))).toMatch(
      /^instances\.web1\.disks\.0\.drbd\.secret: /,
    );
    // An instance taken alone (the workflows' view, stripped of secrets) needs none.
    expect(refusal(InstanceSchema, instanceInput({ disks: [noSecret] }))).toBeNull();
  });

  test('only DRBD disks have a DRBD logical id', () => {
    expect(refusal(InstanceSchema, instanceInput({ diskTemplate: 'sharedfile', disks: [{ uuid: 'd1', size: 1, drbd: DRBD }] }))).toBe(
      'disks.0: sharedfile disk with a drbd logical id',
    );
    expect(issueCodes(InstanceSchema, instanceInput({ diskTemplate: 'plain', disks: [{ uuid: 'd1', size: 1, drbd: DRBD }] }))).toEqual([
      'custom',
    ]);
    expect(
      refusal(InstanceSchema, instanceInput({ diskTemplate: 'sharedfile', disks: [{ uuid: 'd1', size: 1, path: 'x.img' }] })),
    ).toBeNull();
  });

  test('names are host-style, MACs lower-case colon-separated, addresses IPv4', () => {
    for (const ok of ['node1', 'n', '1node', 'node-1.example_x']) expect(NAME_RE.test(ok)).toBe(true);
    for (const bad of ['', '-node', '.node', 'node 1', 'node/1', 'x\ny']) expect(NAME_RE.test(bad)).toBe(false);
    const nic = { uuid: 'n', mac: 'aa:00:00:00:00:01', link: 'br0' };
    expect(NicSchema.parse(nic)).toEqual({ ...nic, mode: 'bridged', vlan: '' });
    expect(refusal(NicSchema, { ...nic, mac: 'AA:00:00:00:00:01' })).toMatch(/^mac: /);
    expect(refusal(NicSchema, { ...nic, mac: 'aa:00:00:00:00:01:02' })).toMatch(/^mac: /);
    expect(refusal(NicSchema, { ...nic, mac: 'xaa:00:00:00:00:01' })).toMatch(/^mac: /);
    expect(refusal(NodeSchema, { ...NODE, secondaryIp: '198.51.100' })).toMatch(/^secondaryIp: /);
    expect(refusal(NodeSchema, { ...NODE, name: 'node_1!' })).toBe(
      'name: must be a host-style name (letters, digits, ".", "_", "-"; no "..")',
    );
  });

  test('what is given is kept: instance and cluster hypervisor parameters, read-only disks, the allocator, reservations', () => {
    const cfg = ClusterConfigSchema.parse({
      version: 1,
      serial: 3,
      cluster: {
        name: 'c1',
        uuid: 'c',
        masterNode: 'node1',
        hvparams: { migration_mode: 'non-live', migration_bandwidth: 64, migration_downtime: 10 },
        defaultIallocator: 'hail',
      },
      nodes: { node1: NODE },
      instances: {
        web1: instanceInput({
          hvparams: { migration_mode: 'non-live', migration_bandwidth: 100, migration_downtime: 5 },
          disks: [{ uuid: 'd1', size: 1024, mode: 'ro', drbd: DRBD }],
        }),
      },
      reservations: { op1: { node: 'node2', memory: 1024, instance: 'web1', workflowId: 'instance/web1', runId: 'r1' } },
    });
    expect(cfg.cluster.hvparams).toEqual({ migration_mode: 'non-live', migration_bandwidth: 64, migration_downtime: 10 });
    expect(cfg.cluster.defaultIallocator).toBe('hail');
    expect(cfg.instances.web1?.hvparams).toEqual({ migration_mode: 'non-live', migration_bandwidth: 100, migration_downtime: 5 });
    expect(cfg.instances.web1?.disks[0]?.mode).toBe('ro');
    expect(cfg.reservations).toEqual({ op1: { node: 'node2', memory: 1024, instance: 'web1', workflowId: 'instance/web1', runId: 'r1' } });
  });

  test('cluster hypervisor defaults fill what a partial setting leaves out; no allocator is a choice too', () => {
    const cluster = (extra: Record<string, unknown>) =>
      ClusterConfigSchema.parse({
        version: 1,
        serial: 0,
        cluster: { name: 'c1', uuid: 'c', masterNode: 'node1', ...extra },
        nodes: {},
        instances: {},
      }).cluster;
    expect(cluster({ hvparams: { migration_bandwidth: 64 } }).hvparams).toEqual({
      migration_mode: 'live',
      migration_bandwidth: 64,
      migration_downtime: 30,
    });
    expect(cluster({ hvparams: { migration_mode: 'non-live' } }).hvparams).toEqual({
      migration_mode: 'non-live',
      migration_bandwidth: 32,
      migration_downtime: 30,
    });
    expect(cluster({ defaultIallocator: null }).defaultIallocator).toBeNull();
    expect(() => cluster({ defaultIallocator: 'other' })).toThrow();
  });

  test('disk sizes are documented as MiB in the JSON schema', () => {
    const schema = z.toJSONSchema(DiskSchema, { io: 'input' });
    expect(schema.properties?.size).toMatchObject({ type: 'integer', description: 'MiB' });
  });
});
