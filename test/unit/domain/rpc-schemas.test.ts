/**
 * The node agents' input schemas (domain/rpc-schemas.ts): per node RPC, the argument list it accepts
 * and the one-line reason it refuses a forged one with (the `InvalidRpcInput` message); the bounds
 * of an instance description, a migration target and a hook request; and Ganeti's names of the node
 * RPCs that a fault can address.
 */
import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { HOOK_TIMEOUT_MAX_SEC, MEMORY_MAX_MIB, POLL_MAX_MS } from '../../../domain/limits.js';
import {
  HOOK_ENV_MAX_KEYS,
  HOOK_ENV_VALUE_MAX_LENGTH,
  HookEnvSchema,
  MIGRATION_INFO_MAX_LENGTH,
  MigrationInfoSchema,
  MigrationTargetSchema,
  NODE_RPC_ARGS,
  NODE_RPC_NAMES,
  RpcDiskSchema,
  RpcInstanceSchema,
  RunHooksRequestSchema,
  describeRpcInputError,
  type NodeRpcActivityName,
} from '../../../domain/rpc-schemas.js';

/** The one-line reason a node agent refuses `input` with, or null when it accepts it. */
function refusal(schema: z.ZodType, input: unknown): string | null {
  const r = schema.safeParse(input);
  return r.success ? null : describeRpcInputError(r.error);
}

const DRBD_DISK = {
  index: 0,
  uuid: 'disk-1-0',
  size: 1024,
  template: 'drbd',
  drbd: { minor: 0, peerNode: 'node2', peerMinor: 1, peerIp: '192.168.1.2', port: 11000 },
};
const INST = {
  name: 'web1',
  uuid: 'inst-1',
  memory: 1024,
  vcpus: 2,
  bridges: ['br0'],
  hvparams: { migration_mode: 'live', migration_bandwidth: 32, migration_downtime: 30 },
  disks: [DRBD_DISK],
};
const inst = (patch: Record<string, unknown>) => ({ ...INST, ...patch });
const hvparams = (patch: Record<string, unknown>) => inst({ hvparams: { ...INST.hvparams, ...patch } });
const fileDisk = (index: number, patch: Record<string, unknown> = {}) => ({
  index,
  uuid: `disk-${index}`,
  size: 512,
  template: 'sharedfile',
  path: `files1/disk${index}.img`,
  ...patch,
});
const HOOKS = { path: 'instance-migrate', phase: 'pre', env: { GANETI_INSTANCE_NAME: 'web1' }, timeoutSec: 300 };
const TARGET = { node: 'node2', ip: '192.168.1.2', port: 8102 };
const SETTINGS = { bandwidth: 32, downtimeMs: 30, autoConverge: true, postcopy: false };
/** RPCs whose last argument may be left out (the migration settings of issue 14). */
const OPTIONAL_LAST: readonly string[] = ['acceptInstance', 'instanceMigrate'];

/** One well-formed argument list per node RPC, as the orchestrator sends it. */
const VALID: Record<NodeRpcActivityName, unknown[]> = {
  nodeInfo: [],
  instanceList: [],
  instanceInfo: [INST],
  bridgesExist: [['br0', 'vlan.10']],
  instanceMigratable: [INST],
  migrationInfo: [INST],
  acceptInstance: [INST, '{"runtime":1}', '192.168.1.2', { postcopy: true }],
  instanceMigrate: [INST, TARGET, true, SETTINGS],
  instanceGetMigrationStatus: [INST],
  instanceMigrationControl: [INST, { action: 'set-downtime', downtimeMs: 300 }],
  instanceFinalizeMigrationSrc: [INST, true, false],
  instanceFinalizeMigrationDst: [INST, '{"runtime":1}', true],
  instanceBalloonMemory: [INST, 512],
  instanceShutdown: [INST, 120, 'maintenance'],
  instanceStart: [INST, ''],
  blockdevFind: [INST, 0],
  blockdevClose: [INST],
  blockdevOpen: [INST, true],
  blockdevShutdown: [INST],
  blockdevAssemble: [INST, false],
  drbdDisconnectNet: [INST],
  drbdAttachNet: [INST, true],
  drbdWaitSync: [INST],
  waitForDiskSync: [INST, { pollMs: 2000 }],
  waitForMigration: [INST, { pollMs: 1000, progressMs: 10_000, completionTimeoutSec: 800, progressTimeoutSec: 150 }],
  runHooks: [HOOKS],
};
const RPCS = Object.keys(VALID) as NodeRpcActivityName[];

describe('the argument list of every node RPC', () => {
  test('there is a well-formed example for every node RPC here', () => {
    expect([...RPCS].sort()).toEqual(Object.keys(NODE_RPC_ARGS).sort());
  });

  test.each(RPCS)('%s accepts what the orchestrator sends', (rpc) => {
    expect(refusal(NODE_RPC_ARGS[rpc], VALID[rpc])).toBeNull();
  });

  test.each(RPCS)('%s refuses an extra argument and a missing one', (rpc) => {
    const args = VALID[rpc];
    expect(refusal(NODE_RPC_ARGS[rpc], [...args, 1])).toBe(`Too big: expected array to have <=${args.length} items`);
    const required = OPTIONAL_LAST.includes(rpc) ? args.length - 1 : args.length;
    if (OPTIONAL_LAST.includes(rpc)) expect(refusal(NODE_RPC_ARGS[rpc], args.slice(0, -1))).toBeNull();
    if (required > 0) {
      expect(refusal(NODE_RPC_ARGS[rpc], args.slice(0, required - 1))).toBe(`Too small: expected array to have >=${required} items`);
    }
  });

  test.each(RPCS.filter((rpc) => VALID[rpc][0] === INST))('%s refuses a forged instance name', (rpc) => {
    const args = [inst({ name: '../../etc' }), ...VALID[rpc].slice(1)];
    expect(refusal(NODE_RPC_ARGS[rpc], args)).toBe('argument 0.name: must be a host-style name (letters, digits, ".", "_", "-"; no "..")');
  });

  const BOOL = 'Invalid input: expected boolean, received string';
  test.each<[NodeRpcActivityName, unknown[], string | null]>([
    ['bridgesExist', [[]], null],
    ['bridgesExist', [Array.from({ length: 64 }, (_, i) => `br${i}`)], null],
    ['bridgesExist', [Array.from({ length: 65 }, (_, i) => `br${i}`)], 'argument 0: Too big: expected array to have <=64 items'],
    ['bridgesExist', [['br0', 'br 1']], 'argument 0.1: must be an interface or routing table name'],
    ['bridgesExist', ['br0'], 'argument 0: Invalid input: expected array, received string'],
    ['acceptInstance', [INST, 'x'.repeat(MIGRATION_INFO_MAX_LENGTH), '10.0.0.1'], null],
    [
      'acceptInstance',
      [INST, 'x'.repeat(MIGRATION_INFO_MAX_LENGTH + 1), '10.0.0.1'],
      'argument 1: Too big: expected string to have <=65536 characters',
    ],
    ['acceptInstance', [INST, '', '10.0.0.1'], 'argument 1: Too small: expected string to have >=1 characters'],
    ['acceptInstance', [INST, 'info', 'node2'], 'argument 2: Invalid IPv4 address'],
    ['instanceMigrate', [INST, { ...TARGET, port: 0 }, true], 'argument 1.port: Too small: expected number to be >=1'],
    ['instanceMigrate', [INST, { ...TARGET, port: 65_536 }, true], 'argument 1.port: Too big: expected number to be <=65535'],
    ['instanceMigrate', [INST, { ...TARGET, ip: '192.168.1' }, true], 'argument 1.ip: Invalid IPv4 address'],
    [
      'instanceMigrate',
      [INST, { ...TARGET, node: 'node2;reboot' }, true],
      'argument 1.node: must be a host-style name (letters, digits, ".", "_", "-"; no "..")',
    ],
    ['instanceMigrate', [INST, { ...TARGET, cmd: 'x' }, true], 'argument 1: Unrecognized key: "cmd"'],
    ['instanceMigrate', [INST, TARGET, 'yes'], `argument 2: ${BOOL}`],
    ['instanceMigrate', [INST, TARGET, true, { ...SETTINGS, bandwidth: 0 }], 'argument 3.bandwidth: Too small: expected number to be >=1'],
    [
      'instanceMigrate',
      [INST, TARGET, true, { ...SETTINGS, bandwidth: 1.5 }],
      'argument 3.bandwidth: Invalid input: expected int, received number',
    ],
    [
      'instanceMigrate',
      [INST, TARGET, true, { ...SETTINGS, downtimeMs: 2_000_001 }],
      'argument 3.downtimeMs: Too big: expected number to be <=2000000',
    ],
    ['instanceMigrate', [INST, TARGET, true, { ...SETTINGS, postcopy: 'yes' }], `argument 3.postcopy: ${BOOL}`],
    ['instanceMigrate', [INST, TARGET, true, { ...SETTINGS, caps: 'x-colo' }], 'argument 3: Unrecognized key: "caps"'],
    [
      'instanceMigrate',
      [INST, TARGET, true, { bandwidth: 32 }],
      'argument 3.downtimeMs: Invalid input: expected number, received undefined; argument 3.autoConverge: Invalid input: expected boolean, received undefined; argument 3.postcopy: Invalid input: expected boolean, received undefined',
    ],
    [
      'acceptInstance',
      [INST, 'info', '10.0.0.1', { postcopy: 1 }],
      'argument 3.postcopy: Invalid input: expected boolean, received number',
    ],
    ['acceptInstance', [INST, 'info', '10.0.0.1', { postcopy: true, x: 1 }], 'argument 3: Unrecognized key: "x"'],
    ['instanceMigrationControl', [INST, { action: 'start-postcopy' }], null],
    ['instanceMigrationControl', [INST, { action: 'pause-source' }], null],
    [
      'instanceMigrationControl',
      [INST, { action: 'set-downtime', downtimeMs: 0 }],
      'argument 1.downtimeMs: Too small: expected number to be >=1',
    ],
    [
      'instanceMigrationControl',
      [INST, { action: 'set-downtime' }],
      'argument 1.downtimeMs: Invalid input: expected number, received undefined',
    ],
    ['instanceMigrationControl', [INST, { action: 'pause-source', downtimeMs: 3 }], 'argument 1: Unrecognized key: "downtimeMs"'],
    [
      'instanceMigrationControl',
      [INST, { action: 'migrate-cancel' }],
      "argument 1.action: Invalid discriminator value. Expected 'start-postcopy' | 'pause-source' | 'set-downtime'",
    ],
    [
      'waitForMigration',
      [INST, { pollMs: 1000, progressMs: 0, completionTimeoutSec: -1 }],
      'argument 1.completionTimeoutSec: Too small: expected number to be >=0',
    ],
    [
      'waitForMigration',
      [INST, { pollMs: 1000, progressMs: 0, progressTimeoutSec: 86_401 }],
      'argument 1.progressTimeoutSec: Too big: expected number to be <=86400',
    ],
    ['instanceFinalizeMigrationSrc', [INST, 'yes', false], `argument 1: ${BOOL}`],
    ['instanceFinalizeMigrationSrc', [INST, true, 'no'], `argument 2: ${BOOL}`],
    ['instanceFinalizeMigrationDst', [INST, '', true], 'argument 1: Too small: expected string to have >=1 characters'],
    [
      'instanceFinalizeMigrationDst',
      [INST, 'x'.repeat(MIGRATION_INFO_MAX_LENGTH + 1), true],
      'argument 1: Too big: expected string to have <=65536 characters',
    ],
    ['instanceFinalizeMigrationDst', [INST, 'info', 'yes'], `argument 2: ${BOOL}`],
    ['instanceBalloonMemory', [INST, 0], null],
    ['instanceBalloonMemory', [INST, MEMORY_MAX_MIB], null],
    ['instanceBalloonMemory', [INST, MEMORY_MAX_MIB + 1], 'argument 1: Too big: expected number to be <=16777216'],
    ['instanceBalloonMemory', [INST, -1], 'argument 1: Too small: expected number to be >=0'],
    ['instanceBalloonMemory', [INST, 1.5], 'argument 1: Invalid input: expected int, received number'],
    ['instanceShutdown', [INST, 0, ''], null],
    ['instanceShutdown', [INST, 2.5, ''], null],
    ['instanceShutdown', [INST, 86_400, 'r'.repeat(1000)], null],
    ['instanceShutdown', [INST, 86_401, ''], 'argument 1: Too big: expected number to be <=86400'],
    ['instanceShutdown', [INST, -1, ''], 'argument 1: Too small: expected number to be >=0'],
    ['instanceShutdown', [INST, 120, 'r'.repeat(1001)], 'argument 2: must be at most 1000 characters'],
    ['instanceStart', [INST, 'r'.repeat(1000)], null],
    ['instanceStart', [INST, 'r'.repeat(1001)], 'argument 1: must be at most 1000 characters'],
    ['instanceStart', [INST, 1], 'argument 1: Invalid input: expected string, received number'],
    ['blockdevFind', [INST, 63], null],
    ['blockdevFind', [INST, 64], 'argument 1: Too big: expected number to be <=63'],
    ['blockdevFind', [INST, -1], 'argument 1: Too small: expected number to be >=0'],
    ['blockdevFind', [INST, 0.5], 'argument 1: Invalid input: expected int, received number'],
    ['blockdevOpen', [INST, 'yes'], `argument 1: ${BOOL}`],
    ['blockdevAssemble', [INST, 'yes'], `argument 1: ${BOOL}`],
    ['drbdAttachNet', [INST, 'yes'], `argument 1: ${BOOL}`],
    ['waitForDiskSync', [INST, { pollMs: 1 }], null],
    ['waitForDiskSync', [INST, { pollMs: POLL_MAX_MS }], null],
    ['waitForDiskSync', [INST, { pollMs: POLL_MAX_MS + 1 }], 'argument 1.pollMs: Too big: expected number to be <=3600000'],
    ['waitForDiskSync', [INST, { pollMs: 0 }], 'argument 1.pollMs: Too small: expected number to be >0'],
    ['waitForDiskSync', [INST, { pollMs: 1.5 }], 'argument 1.pollMs: Invalid input: expected int, received number'],
    ['waitForDiskSync', [INST, { pollMs: 1000, progressMs: 0 }], 'argument 1: Unrecognized key: "progressMs"'],
    ['waitForMigration', [INST, { pollMs: 1, progressMs: 0 }], null],
    ['waitForMigration', [INST, { pollMs: POLL_MAX_MS, progressMs: POLL_MAX_MS }], null],
    [
      'waitForMigration',
      [INST, { pollMs: POLL_MAX_MS + 1, progressMs: POLL_MAX_MS + 1 }],
      'argument 1.pollMs: Too big: expected number to be <=3600000; argument 1.progressMs: Too big: expected number to be <=3600000',
    ],
    [
      'waitForMigration',
      [INST, { pollMs: 0, progressMs: -1 }],
      'argument 1.pollMs: Too small: expected number to be >0; argument 1.progressMs: Too small: expected number to be >=0',
    ],
    ['waitForMigration', [INST, { pollMs: 1000, progressMs: 0.5 }], 'argument 1.progressMs: Invalid input: expected int, received number'],
    ['waitForMigration', [INST, { pollMs: 1000 }], 'argument 1.progressMs: Invalid input: expected number, received undefined'],
    ['waitForMigration', [INST, { pollMs: 1000, progressMs: 0, x: 1 }], 'argument 1: Unrecognized key: "x"'],
    ['runHooks', [{ ...HOOKS, path: 'instance-failover', phase: 'post', timeoutSec: 0.5 }], null],
    ['runHooks', [{ ...HOOKS, timeoutSec: HOOK_TIMEOUT_MAX_SEC }], null],
    ['runHooks', [{ ...HOOKS, timeoutSec: HOOK_TIMEOUT_MAX_SEC + 1 }], 'argument 0.timeoutSec: Too big: expected number to be <=86400'],
    ['runHooks', [{ ...HOOKS, timeoutSec: 0 }], 'argument 0.timeoutSec: Too small: expected number to be >0'],
    [
      'runHooks',
      [{ ...HOOKS, path: '../../etc', phase: 'pre.d/../x' }],
      'argument 0.path: Invalid option: expected one of "instance-migrate"|"instance-failover"|"instance-start"|"instance-stop"; ' +
        'argument 0.phase: Invalid option: expected one of "pre"|"post"',
    ],
    ['runHooks', [{ ...HOOKS, dir: '/tmp' }], 'argument 0: Unrecognized key: "dir"'],
    [
      'runHooks',
      [{ ...HOOKS, env: { LD_PRELOAD: 'x.so' } }],
      'argument 0.env.LD_PRELOAD: Invalid key in record: hook environment keys must be GANETI_[A-Z0-9_]+ (Ganeti hook keys only)',
    ],
    ['runHooks', [{ ...HOOKS, env: { GANETI_X: 'a\0b' } }], 'argument 0.env.GANETI_X: must not contain NUL'],
  ])('%s, case %#', (rpc, args, message) => {
    expect(refusal(NODE_RPC_ARGS[rpc], args)).toBe(message);
  });
});

describe('the instance description sent with a node RPC', () => {
  test.each<[string, unknown, string | null]>([
    ['vcpus 1', inst({ vcpus: 1 }), null],
    ['vcpus 1024', inst({ vcpus: 1024 }), null],
    ['vcpus 0', inst({ vcpus: 0 }), 'vcpus: Too small: expected number to be >0'],
    ['vcpus 1025', inst({ vcpus: 1025 }), 'vcpus: Too big: expected number to be <=1024'],
    ['vcpus 1.5', inst({ vcpus: 1.5 }), 'vcpus: Invalid input: expected int, received number'],
    ['memory 0', inst({ memory: 0 }), null],
    ['memory over 16 TiB', inst({ memory: MEMORY_MAX_MIB + 1 }), 'memory: Too big: expected number to be <=16777216'],
    ['no bridges', inst({ bridges: [] }), null],
    ['65 bridges', inst({ bridges: Array.from({ length: 65 }, () => 'br0') }), 'bridges: Too big: expected array to have <=64 items'],
    ['a forged bridge', inst({ bridges: ['br0;x'] }), 'bridges.0: must be an interface or routing table name'],
    ['a forged uuid', inst({ uuid: '../x' }), 'uuid: must be letters, digits, ".", "_" and "-"'],
    ['non-live', hvparams({ migration_mode: 'non-live' }), null],
    ['an unknown mode', hvparams({ migration_mode: 'fast' }), 'hvparams.migration_mode: Invalid option: expected one of "live"|"non-live"'],
    ['bandwidth 1 MiB/s', hvparams({ migration_bandwidth: 1 }), null],
    ['bandwidth 1 TiB/s', hvparams({ migration_bandwidth: 1024 * 1024 }), null],
    ['bandwidth 0', hvparams({ migration_bandwidth: 0 }), 'hvparams.migration_bandwidth: Too small: expected number to be >0'],
    [
      'bandwidth over 1 TiB/s',
      hvparams({ migration_bandwidth: 1024 * 1024 + 1 }),
      'hvparams.migration_bandwidth: Too big: expected number to be <=1048576',
    ],
    ['bandwidth 1.5', hvparams({ migration_bandwidth: 1.5 }), 'hvparams.migration_bandwidth: Invalid input: expected int, received number'],
    ['downtime 1 ms', hvparams({ migration_downtime: 1 }), null],
    ['downtime 2000 s', hvparams({ migration_downtime: 2_000_000 }), null],
    ['downtime 0', hvparams({ migration_downtime: 0 }), 'hvparams.migration_downtime: Too small: expected number to be >0'],
    [
      'downtime over 2000 s',
      hvparams({ migration_downtime: 2_000_001 }),
      'hvparams.migration_downtime: Too big: expected number to be <=2000000',
    ],
    ['downtime 0.5', hvparams({ migration_downtime: 0.5 }), 'hvparams.migration_downtime: Invalid input: expected int, received number'],
    ['an extra hypervisor parameter', hvparams({ kernel_path: '/x' }), 'hvparams: Unrecognized key: "kernel_path"'],
    ['an extra key', inst({ cmd: 'x' }), 'Unrecognized key: "cmd"'],
    ['no disks', inst({ disks: [] }), null],
    ['64 disks', inst({ disks: Array.from({ length: 64 }, (_, i) => fileDisk(i)) }), null],
    ['65 disks', inst({ disks: Array.from({ length: 65 }, (_, i) => fileDisk(i)) }), 'disks: Too big: expected array to have <=64 items'],
    ['disks 0, 1', inst({ disks: [fileDisk(0), fileDisk(1)] }), null],
    ['disks 0, 2', inst({ disks: [fileDisk(0), fileDisk(2)] }), 'disks: disk indices must be 0, 1, … in order'],
    ['disks 1, 0', inst({ disks: [fileDisk(1), fileDisk(0)] }), 'disks: disk indices must be 0, 1, … in order'],
    ['disks 0, 0', inst({ disks: [fileDisk(0), fileDisk(0)] }), 'disks: disk indices must be 0, 1, … in order'],
  ])('%s', (_, input, message) => {
    expect(refusal(RpcInstanceSchema, input)).toBe(message);
  });

  test.each<[string, unknown, string | null]>([
    ['a DRBD disk', DRBD_DISK, null],
    ['a plain disk', { index: 0, uuid: 'd', size: 0, template: 'plain' }, null],
    ['a file disk', fileDisk(0, { template: 'file' }), null],
    ['index 63', fileDisk(63), null],
    ['index -1', fileDisk(-1), 'index: Too small: expected number to be >=0'],
    ['index 0.5', fileDisk(0.5), 'index: Invalid input: expected int, received number'],
    [
      'an unknown template',
      fileDisk(0, { template: 'lvm' }),
      'template: Invalid option: expected one of "drbd"|"sharedfile"|"plain"|"file"',
    ],
    ['size -1', fileDisk(0, { size: -1 }), 'size: Too small: expected number to be >=0'],
    [
      'an absolute path',
      fileDisk(0, { path: '/disk0.img' }),
      'path: must be a relative path inside the storage directory (no "..", no leading "/")',
    ],
    [
      'a path up',
      fileDisk(0, { path: 'files1/../../x' }),
      'path: must be a relative path inside the storage directory (no "..", no leading "/")',
    ],
    ['index 64', fileDisk(64), 'index: Too big: expected number to be <=63'],
    [
      'an empty uuid',
      fileDisk(0, { uuid: '' }),
      'uuid: Too small: expected string to have >=1 characters; uuid: must be letters, digits, ".", "_" and "-"',
    ],
    ['an extra key', fileDisk(0, { dev: 'sda' }), 'Unrecognized key: "dev"'],
    [
      'a DRBD peer address that is no IPv4 address',
      { ...DRBD_DISK, drbd: { ...DRBD_DISK.drbd, peerIp: 'node2' } },
      'drbd.peerIp: Invalid IPv4 address',
    ],
    [
      'a forged DRBD peer',
      { ...DRBD_DISK, drbd: { ...DRBD_DISK.drbd, peerNode: '-o', peerMinor: 1_048_576, port: 0 } },
      'drbd.peerNode: must be a host-style name (letters, digits, ".", "_", "-"; no ".."); ' +
        'drbd.peerMinor: Too big: expected number to be <=1048575; drbd.port: Too small: expected number to be >=1',
    ],
    ['an extra DRBD key', { ...DRBD_DISK, drbd: { ...DRBD_DISK.drbd, secret: 's' } }, 'drbd: Unrecognized key: "secret"'],
  ])('disk, %s', (_, input, message) => {
    expect(refusal(RpcDiskSchema, input)).toBe(message);
  });
});

describe('migration info and target', () => {
  test('the migration info is 1 byte to 64 KiB', () => {
    expect(MIGRATION_INFO_MAX_LENGTH).toBe(65_536);
    expect(refusal(MigrationInfoSchema, 'x')).toBeNull();
    expect(refusal(MigrationInfoSchema, 'x'.repeat(65_536))).toBeNull();
    expect(refusal(MigrationInfoSchema, 'x'.repeat(65_537))).toBe('Too big: expected string to have <=65536 characters');
    expect(refusal(MigrationInfoSchema, '')).toBe('Too small: expected string to have >=1 characters');
  });

  test('the target is a node, an IPv4 address and a port, nothing else', () => {
    expect(refusal(MigrationTargetSchema, TARGET)).toBeNull();
    expect(refusal(MigrationTargetSchema, { ...TARGET, port: 65_535 })).toBeNull();
    expect(refusal(MigrationTargetSchema, { node: 'node2', ip: '::1', port: 1.5 })).toBe(
      'ip: Invalid IPv4 address; port: Invalid input: expected int, received number',
    );
    expect(refusal(MigrationTargetSchema, { ...TARGET, uri: 'exec:sh' })).toBe('Unrecognized key: "uri"');
  });
});

describe('hook requests', () => {
  const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`GANETI_K${i}`, 'v']));

  test('an environment has at most 1024 keys of Ganeti’s form, each value at most 64 KiB without NUL', () => {
    expect([HOOK_ENV_MAX_KEYS, HOOK_ENV_VALUE_MAX_LENGTH]).toEqual([1024, 65_536]);
    expect(refusal(HookEnvSchema, {})).toBeNull();
    expect(refusal(HookEnvSchema, keys(1024))).toBeNull();
    expect(refusal(HookEnvSchema, keys(1025))).toBe('at most 1024 keys');
    expect(refusal(HookEnvSchema, { GANETI_X: 'v'.repeat(65_536) })).toBeNull();
    expect(refusal(HookEnvSchema, { GANETI_X: 'v'.repeat(65_537) })).toBe('GANETI_X: Too big: expected string to have <=65536 characters');
    expect(refusal(HookEnvSchema, { GANETI_X: '\0' })).toBe('GANETI_X: must not contain NUL');
    expect(refusal(HookEnvSchema, { GANETI_X: 'a\0' })).toBe('GANETI_X: must not contain NUL');
    expect(refusal(HookEnvSchema, { GANETI_X: 1 })).toBe('GANETI_X: Invalid input: expected string, received number');
    expect(refusal(HookEnvSchema, { GANETI_OK: '', BASH_ENV: 'x' })).toBe(
      'BASH_ENV: Invalid key in record: hook environment keys must be GANETI_[A-Z0-9_]+ (Ganeti hook keys only)',
    );
  });

  test('a request names one of the two hook paths and phases and a timeout up to a day', () => {
    for (const path of ['instance-migrate', 'instance-failover'])
      for (const phase of ['pre', 'post']) expect(refusal(RunHooksRequestSchema, { ...HOOKS, path, phase })).toBeNull();
    expect(refusal(RunHooksRequestSchema, { ...HOOKS, timeoutSec: 86_400 })).toBeNull();
    expect(refusal(RunHooksRequestSchema, { ...HOOKS, timeoutSec: 86_400.5 })).toBe('timeoutSec: Too big: expected number to be <=86400');
    expect(refusal(RunHooksRequestSchema, { ...HOOKS, path: 'instance-reboot' })).toBe(
      'path: Invalid option: expected one of "instance-migrate"|"instance-failover"|"instance-start"|"instance-stop"',
    );
    expect(refusal(RunHooksRequestSchema, { ...HOOKS, env: undefined })).toBe('env: Invalid input: expected record, received undefined');
  });
});

describe('describeRpcInputError', () => {
  test('an argument is named by its position, what lies inside it by its dotted path', () => {
    expect(refusal(NODE_RPC_ARGS.instanceInfo, [inst({ disks: [{ ...DRBD_DISK, drbd: { ...DRBD_DISK.drbd, port: 0 } }] })])).toBe(
      'argument 0.disks.0.drbd.port: Too small: expected number to be >=1',
    );
  });

  test('a path that does not start at an argument is printed as it is, an issue without one as its message alone', () => {
    expect(refusal(z.object({ a: z.object({ b: z.string() }) }), { a: { b: 1 } })).toBe(
      'a.b: Invalid input: expected string, received number',
    );
    expect(refusal(z.string(), 1)).toBe('Invalid input: expected string, received number');
  });

  test('the issues are joined with "; ", the reasons of a refused record key with ", "', () => {
    const keyed = z.record(
      z
        .string()
        .min(3, 'too short')
        .regex(/^[A-Z]+$/, 'not upper case'),
      z.number(),
    );
    expect(refusal(keyed, { ab: 1, ABCD: 'x' })).toBe(
      'ab: Invalid key in record: too short, not upper case; ABCD: Invalid input: expected number, received string',
    );
  });
});

describe('NODE_RPC_NAMES', () => {
  test('Ganeti’s names of the node RPCs, sorted: hooks_runner, without the composite activities', () => {
    expect(NODE_RPC_NAMES).toEqual([
      'accept_instance',
      'blockdev_assemble',
      'blockdev_close',
      'blockdev_find',
      'blockdev_open',
      'blockdev_shutdown',
      'bridges_exist',
      'drbd_attach_net',
      'drbd_disconnect_net',
      'drbd_wait_sync',
      'hooks_runner',
      'instance_balloon_memory',
      'instance_finalize_migration_dst',
      'instance_finalize_migration_src',
      'instance_get_migration_status',
      'instance_info',
      'instance_list',
      'instance_migratable',
      'instance_migrate',
      'instance_migration_control',
      'instance_shutdown',
      'instance_start',
      'migration_info',
      'node_info',
    ]);
  });
});
