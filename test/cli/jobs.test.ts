/**
 * The `job` commands and `setup` through the CLI, against a real dev server and the project's
 * workers: list/info/watch, the abort update (accepted before the point of no return, refused after
 * it), exit codes, and the cluster state each leaves.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Connection } from '@temporalio/client';
import { describe, expect, test } from 'vitest';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import type { TestCluster } from '../helpers/cluster.js';
import { cli, cliOnTerminal } from '../helpers/cli.js';
import { start, useHarness, waitForProgress } from '../helpers/harness.js';
import { temporalCli } from '../helpers/temporal.js';

const h = useHarness();
const envFor = (c: TestCluster) => ({ GANETI_TEMPORAL_HOME: c.home, TEMPORAL_ADDRESS: h.env().address, TEMPORAL_NAMESPACE: 'default' });

describe('job commands', () => {
  // Each CLI call is a process of its own (seconds on a loaded machine): the transfers here are slow
  // enough (real time) for the operation to still be where the test looks.
  test('job list --running, job info, job watch', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 2 } });
    const handle = await start(h.env(), c, { instance: 'db1' });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    let running: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 30 && !running.length; i++) {
      running = (await cli(['job', 'list', '--running', '--json'], envFor(c))).json() as Array<Record<string, unknown>>;
    }
    expect(running).toHaveLength(1);
    expect(running[0]).toMatchObject({
      workflowId: 'instance/db1',
      status: 'RUNNING',
      operation: 'migrate',
      sourceNode: 'node1',
      targetNode: 'node3',
    });

    const info = (await cli(['job', 'info', 'db1', '--json'], envFor(c))).json() as Record<string, unknown>;
    expect(info).toMatchObject({ workflowId: 'instance/db1', status: 'RUNNING', summary: 'Migrate db1: node1 → node3, live' });
    expect((info.progress as { phase: string }).phase).toBe('memory-transfer');
    expect((info.live as Array<{ kind: string; node: string }>)[0]).toMatchObject({ kind: 'memory', node: 'node1' });

    const watch = await cli(['job', 'watch', 'instance/db1'], envFor(c));
    expect(watch.code).toBe(0);
    expect(watch.stdout.trim().split('\n').at(-1)).toBe('* done');
    expect(watch.stdout).not.toContain('['); // no progress bar when stdout is not a TTY
    const done = (await cli(['job', 'list', '--json'], envFor(c))).json() as Array<Record<string, unknown>>;
    expect(done[0]).toMatchObject({ workflowId: 'instance/db1', status: 'COMPLETED', phase: 'done' });
    expect((await cli(['job', 'info', 'instance/nosuch'], envFor(c))).code).toBe(3);
  });

  test('job abort before the point of no return: accepted, the migration is reverted', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 1 } });
    const handle = await start(h.env(), c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    const r = await cli(['job', 'abort', 'instance/web1', '--reason', 'change freeze', '--json'], envFor(c));
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ accepted: true, phase: 'memory-transfer' });
    const watch = await cli(['job', 'watch', 'web1', '--json'], envFor(c));
    expect(watch.code).toBe(1);
    expect(watch.json()).toEqual({
      error: {
        type: 'Aborted',
        message:
          'Migrate web1: node1 → node2, live: aborted by the operator during memory-transfer (change freeze); the migration was aborted and the disks reverted; web1 stays on node1',
      },
    });
    expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('job abort after the point of no return: refused with the reason (exit 6), the migration completes', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 10 } });
    c.hook('node1', 'instance-migrate', 'post', '10-slow', 'sleep 20'); // holds the operation after its point of no return
    const handle = await start(h.env(), c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.pointOfNoReturn);
    const r = await cli(['job', 'abort', 'web1'], envFor(c));
    expect(r.code).toBe(6);
    expect(r.stderr.trim()).toBe(
      'Failure: the hypervisor reported the memory transfer to node2 complete: past the point of no return, the operation rolls forward',
    );
    await handle.result();
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });
});

test('setup registers the search attributes on an existing server, once', async () => {
  const bare = await TestWorkflowEnvironment.createLocal({
    server: { executable: temporalCli() },
  });
  try {
    const env = { TEMPORAL_ADDRESS: bare.address, TEMPORAL_NAMESPACE: 'default' };
    const first = await cli(['setup'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.trim()).toBe(
      'registered search attributes: GanetiInstance, GanetiOperation, GanetiSourceNode, GanetiTargetNode, GanetiPhase, GanetiNeedsOperator',
    );
    const conn = await Connection.connect({ address: bare.address });
    const sas = await conn.operatorService.listSearchAttributes({ namespace: 'default' });
    expect(sas.customAttributes).toMatchObject({ GanetiInstance: 2, GanetiNeedsOperator: 5 });
    await conn.close();
    expect((await cli(['setup'], env)).stdout.trim()).toBe('search attributes already registered');
  } finally {
    await bare.teardown();
  }
});

test('on a terminal the CLI shows a live progress bar for the memory transfer', async () => {
  const { c } = await h.cluster({ sim: { timeFactor: 4 } });
  const out = await cliOnTerminal(['instance', 'migrate', 'web1'], envFor(c));
  expect(out).toMatch(/memory transfer \(node1\) \[[█░]+\] +\d{1,3}% \d+\/1024 MiB/);
  expect(out).not.toMatch(/\d+\.\d+% \d+\/1024/); // whole percentages
  expect(out).toContain('* done');
  expect(c.instance('web1').primaryNode).toBe('node2');
});
