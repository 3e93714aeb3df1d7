/**
 * The node agent's argument schemas (domain/rpc-schemas.ts) and the hook runner's own checks: every
 * node activity has a schema; everything the orchestrator sends for the seeded clusters passes it;
 * names, disk paths and hook environment keys out of bounds do not; and the hook runner, called
 * directly, runs nothing outside `<hooksDir>/<path>-<phase>.d` and passes on only Ganeti's keys.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { createNodeActivities } from '../../activities/index.js';
import { DirectoryHookRunner } from '../../adapters/hooks/runner.js';
import { defaultClusterConfig } from '../../adapters/sim/cluster.js';
import { QEMU_CLUSTER } from '../../adapters/sim/seed.js';
import {
  hookEnvironment,
  HOOK_PATH_ENV,
  HOOK_PATHS,
  operationHookEnv,
  type HookArgs,
  type HookPath,
  type HookPhase,
} from '../../domain/hook-env.js';
import { rpcInstanceFor } from '../../domain/instance.js';
import { DiskPathSchema, NAME_MAX_LENGTH, NameSchema } from '../../domain/limits.js';
import { NodeRpcError, type HookRunner, type NodeRpc } from '../../domain/ports.js';
import { HookEnvSchema, NODE_RPC_ARGS, RpcInstanceSchema } from '../../domain/rpc-schemas.js';
import { ClusterConfigSchema } from '../../domain/types.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'ganeti-temporal-trust-'));
  dirs.push(d);
  return d;
};

describe('the schemas the node agents apply', () => {
  test('every node activity has an argument schema, and every schema an activity', () => {
    const acts = createNodeActivities({ rpc: {} as NodeRpc, hooks: {} as HookRunner });
    expect(Object.keys(acts).sort()).toEqual(Object.keys(NODE_RPC_ARGS).sort());
  });

  test('what the orchestrator sends for the seeded clusters passes: every instance on every node, every hook environment', () => {
    for (const cfg of [defaultClusterConfig(), defaultClusterConfig('qemu-cluster', QEMU_CLUSTER)]) {
      ClusterConfigSchema.parse(cfg);
      for (const inst of Object.values(cfg.instances)) {
        for (const node of Object.keys(cfg.nodes))
          expect(RpcInstanceSchema.safeParse(rpcInstanceFor(cfg, inst, node)).error).toBeUndefined();
        const move = { source: inst.primaryNode, target: 'node3' };
        for (const path of HOOK_PATHS) {
          const args: HookArgs =
            path === 'instance-migrate'
              ? { path, live: true, cleanup: false, allowRuntimeChanges: true }
              : path === 'instance-failover'
                ? { path, ignoreConsistency: false, shutdownTimeout: 120 }
                : path === 'instance-start'
                  ? { path, force: false }
                  : { path, timeout: 120 };
          const pre = operationHookEnv(cfg, inst, move, args);
          for (const phase of ['pre', 'post'] as HookPhase[]) {
            expect(HookEnvSchema.safeParse(hookEnvironment(cfg, path, phase, pre, pre)).error).toBeUndefined();
          }
        }
      }
    }
  });

  test.each([
    ['web1', true],
    ['node1.example.com', true],
    ['x'.repeat(NAME_MAX_LENGTH), true],
    ['', false],
    ['x'.repeat(NAME_MAX_LENGTH + 1), false],
    ['../etc', false],
    ['a/b', false],
    ['a..b', false],
    ['.hidden', false],
    ['-rf', false],
    ['db1;reboot', false],
    ['$(id)', false],
    ['web 1', false],
  ])('name %j accepted: %s', (name, ok) => {
    expect(NameSchema.safeParse(name).success).toBe(ok);
  });

  test.each([
    ['files1/disk0.img', true],
    ['disk0.img', true],
    ['/disk0.img', false],
    ['../outside.img', false],
    ['files1/../../outside.img', false],
    ['./disk0.img', false],
    ['files1//disk0.img', false],
    ['', false],
  ])('disk path %j accepted: %s', (path, ok) => {
    expect(DiskPathSchema.safeParse(path).success).toBe(ok);
  });

  test.each([
    ['GANETI_INSTANCE_NAME', true],
    ['GANETI_POST_INSTANCE_BE_maxmem', true],
    ['GANETI_INSTANCE_HV_migration_mode', true],
    ['LD_PRELOAD', false],
    ['PATH', false],
    ['BASH_ENV', false],
    ['GANETI_', false],
    ['GANETI_lower', false],
    ['GANETI_X=1 LD_PRELOAD', false],
  ])('hook environment key %j accepted: %s', (key, ok) => {
    expect(HookEnvSchema.safeParse({ [key]: 'v' }).success).toBe(ok);
  });
});

describe('the hook runner, behind the schema', () => {
  function script(dir: string, name: string, body: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }

  test('passes on only the Ganeti hook keys, with its own PATH and GANETI_DATA_DIR', async () => {
    const home = tmp();
    const hooks = join(home, 'hooks');
    script(join(hooks, 'instance-migrate-pre.d'), '10-env', 'env | sort');
    const r = await new DirectoryHookRunner(hooks, join(home, 'data')).run(
      'instance-migrate',
      'pre',
      {
        GANETI_INSTANCE_NAME: 'web1',
        LD_PRELOAD: 'evil.so',
        BASH_ENV: 'evil.sh',
        PATH: 'evil',
        NODE_OPTIONS: '--require /x',
      },
      10,
    );
    expect(r).toHaveLength(1);
    const env = Object.fromEntries(
      r[0]!.output
        .split('\n')
        .map((l) => l.split('='))
        .map(([k, ...v]) => [k, v.join('=')]),
    );
    expect(env).toMatchObject({ GANETI_INSTANCE_NAME: 'web1', PATH: HOOK_PATH_ENV, GANETI_DATA_DIR: join(home, 'data') });
    for (const k of ['LD_PRELOAD', 'BASH_ENV', 'NODE_OPTIONS']) expect(env).not.toHaveProperty(k);
  });

  test('a forged path or phase is refused and runs nothing, wherever it points', async () => {
    const home = tmp();
    const hooks = join(home, 'hooks');
    const marker = join(home, 'pwned');
    // Where `instance-migrate-x/../../etc.d` and `x/../../etc-pre.d` would lead from the hooks directory.
    script(join(home, 'etc.d'), 'evil', `touch ${marker}`);
    script(join(home, 'etc-pre.d'), 'evil', `touch ${marker}`);
    const runner = new DirectoryHookRunner(hooks, home);
    for (const [path, phase] of [
      ['instance-migrate', 'x/../../etc'],
      ['x/../../etc', 'pre'],
      ['instance-migrate', 'pre.d/../../../etc'],
    ]) {
      await expect(runner.run(path as HookPath, phase as HookPhase, {}, 10)).rejects.toBeInstanceOf(NodeRpcError);
    }
    await expect(runner.run('instance-migrate', 'pre', {}, Number.NaN)).rejects.toThrow(/invalid timeout/);
    expect(existsSync(marker)).toBe(false);
  });
});
