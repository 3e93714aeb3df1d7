/**
 * `node migrate` / `node failover` as an operator runs them: the CLI follows every child's feedback
 * and ends with Ganeti's line; `job list`, `job info` and `job watch` know node operations; and bad
 * input is refused with a clear error and its exit code — at the CLI, the typed client and the raw
 * workflow start — with nothing changed.
 */
import { rmSync } from 'node:fs';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OperationError } from '../../client/api.js';
import { nodeOperationResult, startNodeMigration } from '../../client/node-api.js';
import { orchestratorQueue } from '../../domain/naming.js';
import { cli, cliOnTerminal } from '../helpers/cli.js';
import { createTestCluster, type TestCluster } from '../helpers/cluster.js';
import { evacuationCluster } from '../helpers/evacuate.js';
import { configShape, hardwareShape } from '../helpers/harness.js';
import { useServer, Workers } from '../helpers/temporal.js';

const server = useServer();
let c: TestCluster;
let w: Workers;
beforeAll(async () => {
  c = await createTestCluster(evacuationCluster(3, 3, { configure: (cfg) => void (cfg.cluster.masterNode = 'node3') }));
  w = await new Workers(server.env(), c).all();
});
afterAll(async () => {
  await w?.stopAll();
  c?.remove();
});

const env = () => ({ GANETI_TEMPORAL_HOME: c.home, TEMPORAL_ADDRESS: server.env().address, TEMPORAL_NAMESPACE: 'default' });
const run = (...args: string[]) => cli(args, env());

interface Refusal {
  type: string;
  code?: string | undefined;
  exit?: number;
  message: string;
}

async function viaCli(args: string[]): Promise<Refusal> {
  const r = await run(...args, '--json');
  const err = (JSON.parse(r.stdout) as { error: { type: string; code?: string; message: string } }).error;
  return { type: err.type, code: err.code, exit: r.code, message: err.message };
}

async function refused(p: () => Promise<unknown>): Promise<Refusal> {
  try {
    await p();
  } catch (e) {
    if (e instanceof OperationError) return { type: e.type, code: e.code, message: e.message };
    if (e instanceof WorkflowFailedError && e.cause instanceof ApplicationFailure) {
      const d = (e.cause.details?.[0] ?? {}) as { code?: string };
      return { type: e.cause.type ?? 'ApplicationFailure', code: d.code, message: e.cause.message };
    }
    throw e;
  }
  throw new Error('expected a refusal');
}

const usage = { type: 'UsageError', exit: 2 };
const wrongInput = { type: 'PrereqFailed', code: 'wrong_input', exit: 3 };

describe('bad input is refused, nothing changes', () => {
  const CASES: Array<{
    name: string;
    run: () => Promise<Refusal>;
    expect: Omit<Partial<Refusal>, 'message'> & { message?: RegExp | string };
  }> = [
    { name: 'CLI: empty node name', run: () => viaCli(['node', 'migrate', '']), expect: { ...wrongInput, message: /must not be empty/ } },
    { name: 'CLI: "../" in a node name', run: () => viaCli(['node', 'failover', '../etc']), expect: wrongInput },
    {
      name: 'CLI: unknown node',
      run: () => viaCli(['node', 'migrate', 'node9']),
      expect: { type: 'PrereqFailed', code: 'unknown_entity', exit: 3, message: "Node 'node9' not known" },
    },
    {
      name: 'CLI: --max-concurrent 0',
      run: () => viaCli(['node', 'migrate', 'node1', '--max-concurrent', '0']),
      expect: { ...usage, message: /--max-concurrent must be a whole number from 1 to 1000, not 0/ },
    },
    { name: 'CLI: --max-incoming 2x', run: () => viaCli(['node', 'migrate', 'node1', '--max-incoming', '2x']), expect: usage },
    { name: 'CLI: --max-outgoing -1', run: () => viaCli(['node', 'failover', 'node1', '--max-outgoing', '-1']), expect: usage },
    {
      name: 'CLI: --non-live with --migration-mode',
      run: () => viaCli(['node', 'migrate', 'node1', '--non-live', '--migration-mode', 'live']),
      expect: { ...usage, message: /Only one of the --non-live and --migration-mode options/ },
    },
    {
      name: 'CLI: target = the node being emptied',
      run: () => viaCli(['node', 'migrate', 'node1', '-n', 'node1']),
      expect: { ...wrongInput, message: /must not be the node being emptied/ },
    },
    {
      name: 'CLI: --ignore-consistency on a node not marked offline, without a terminal or -f',
      run: () => viaCli(['node', 'failover', 'node1', '--ignore-consistency']),
      expect: { ...usage, message: /needs a confirmation/ },
    },
    {
      name: 'typed client: limits out of bounds',
      run: () =>
        refused(() => startNodeMigration(server.env().client, { node: 'node1', limits: { maxConcurrent: 1001 } }, { cluster: c.name })),
      expect: { type: 'PrereqFailed', code: 'wrong_input', message: /limits.maxConcurrent/ },
    },
    {
      name: 'raw workflow start: unknown option',
      run: async () => {
        const h = await server.env().client.workflow.start('nodeMigrateWorkflow', {
          taskQueue: orchestratorQueue(c.name),
          workflowId: 'node/node1',
          args: [{ node: 'node1', evacuateEverything: true }],
        });
        return refused(() => h.result());
      },
      expect: { type: 'PrereqFailed', code: 'wrong_input', message: /Unrecognized key/ },
    },
    {
      name: 'raw workflow start: foreign workflow ID',
      run: async () => {
        const h = await server.env().client.workflow.start('nodeFailoverWorkflow', {
          taskQueue: orchestratorQueue(c.name),
          workflowId: 'instance/vm001',
          args: [{ node: 'node1' }],
        });
        return refused(() => h.result());
      },
      expect: { type: 'WrongWorkflowId', message: /runs only as "node\/node1"/ },
    },
  ];
  for (const k of CASES) {
    test(k.name, async () => {
      const cfg0 = configShape(c);
      const hw0 = hardwareShape(c);
      const r = await k.run();
      const { message, ...rest } = k.expect;
      expect(r).toMatchObject(rest);
      if (message) expect(r.message).toMatch(message);
      expect(configShape(c)).toEqual(cfg0);
      expect(hardwareShape(c)).toEqual(hw0);
    });
  }
});

describe('the operator surface', () => {
  test('a node with no primary instances: Ganeti’s line, exit 0, nothing started', async () => {
    const r = await run('node', 'migrate', 'node2');
    expect(r).toMatchObject({ code: 0, stdout: 'No primary instances on node node2, exiting.\n' });
  });

  test('a second node operation on the same node is refused as busy (exit 4)', async () => {
    // A slow pre-hook keeps the dry run going while the second start is tried.
    const hook = c.hook('node1', 'instance-migrate', 'pre', '10-slow', 'sleep 6');
    try {
      const first = await run('node', 'migrate', 'node1', '--dry-run', '--submit', '--json');
      expect(first.code).toBe(0);
      const second = await viaCli(['node', 'migrate', 'node1', '--dry-run']);
      expect(second).toMatchObject({ type: 'NodeBusy', exit: 4 });
      expect(second.message).toMatch(/node node1 is busy: a node operation is running \(workflow node\/node1\)/);
      await nodeOperationResult(server.env().client.workflow.getHandle('node/node1'));
    } finally {
      rmSync(hook);
    }
  });

  test('node migrate follows every child’s feedback and ends like Ganeti; job list / info / watch know it', async () => {
    const r = await run('node', 'migrate', 'node1', '--max-concurrent', '2', '--reason', 'kernel upgrade');
    expect(r.stderr).not.toMatch(/Failure/);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toContain('vm001: Migrating instance vm001');
    expect(lines).toContain('vm003: * done');
    expect(lines).toContain('Instance vm002: migrated to node3');
    expect(lines.at(-1)).toBe('All instances migrated successfully.');
    expect(c.cfg().instances.vm002!.primaryNode).toBe('node3');

    const list = await run('job', 'list', '--json');
    const jobs = JSON.parse(list.stdout) as Array<{ workflowId: string; type: string; operation: string; status: string }>;
    expect(jobs.find((j) => j.workflowId === 'node/node1' && j.status === 'COMPLETED')).toMatchObject({
      type: 'nodeMigrateWorkflow',
      operation: 'node-migrate',
    });
    expect(jobs.filter((j) => j.workflowId.startsWith('instance/vm')).length).toBeGreaterThanOrEqual(3);

    const info = await run('job', 'info', 'node/node1');
    expect(info.stdout).toContain('instances: 3 done, 0 running, 0 waiting, 0 failed of 3');
    expect(info.stdout).toContain('[done] vm001: node1 → node2 (migrated)');

    const watch = await run('job', 'watch', 'node/node1', '--json');
    expect(JSON.parse(watch.stdout)).toMatchObject({ operation: 'node-migrate', node: 'node1', errors: 0 });
  });

  test('on a terminal, node migrate shows a progress bar over the instances', async () => {
    const counts = new Map<string, number>();
    for (const i of Object.values(c.cfg().instances)) counts.set(i.primaryNode, (counts.get(i.primaryNode) ?? 0) + 1);
    const [node, n] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]!;
    const hook = c.hook('node3', 'instance-migrate', 'pre', '10-slow', 'sleep 1'); // each child takes a visible while
    try {
      const out = await cliOnTerminal(['node', 'migrate', node, '--max-concurrent', '1'], env());
      expect(out).toMatch(new RegExp(`instances \\[[█░]+\\] \\d/${n} finished, \\d running`));
      expect(out).toContain('All instances migrated successfully.');
      expect(Object.values(c.cfg().instances).filter((i) => i.primaryNode === node)).toEqual([]);
    } finally {
      rmSync(hook);
    }
  });
});
