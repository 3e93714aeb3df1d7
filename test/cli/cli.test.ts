/**
 * The CLI contract (client/cli.ts) as a separate process against a real dev server and the project's
 * workers: JSON shapes, exit codes, and the cluster state each command leaves.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import type { TestCluster } from '../helpers/cluster.js';
import { cli } from '../helpers/cli.js';
import { useHarness } from '../helpers/harness.js';

const h = useHarness();

const envFor = (c: TestCluster) => ({ GANETI_TEMPORAL_HOME: c.home, TEMPORAL_ADDRESS: h.env().address, TEMPORAL_NAMESPACE: 'default' });

describe('instance commands', () => {
  test('instance list --json prints the instance info objects', async () => {
    const { c } = await h.cluster();
    const r = await cli(['instance', 'list', '--json'], envFor(c));
    expect(r.code).toBe(0);
    const list = r.json() as Array<Record<string, unknown>>;
    expect(list.map((i) => i.name)).toEqual(['db1', 'files1', 'web1', 'web2', 'web3']);
    expect(list[2]).toMatchObject({
      name: 'web1',
      primaryNode: 'node1',
      secondaryNodes: ['node2'],
      diskTemplate: 'drbd',
      adminState: 'up',
    });
    const info = await cli(['instance', 'info', 'files1', '--json'], envFor(c));
    expect(info.json()).toMatchObject({
      name: 'files1',
      primaryNode: 'node2',
      secondaryNodes: [],
      diskTemplate: 'sharedfile',
      adminState: 'up',
    });
  });

  test('instance migrate --json succeeds with the result object and exit 0', async () => {
    const { c } = await h.cluster();
    const r = await cli(['instance', 'migrate', 'web1', '--json'], envFor(c));
    expect(r.code, r.stderr).toBe(0);
    const out = r.json() as Record<string, unknown>;
    expect(Object.keys(out)).toEqual(['outcome', 'instance', 'sourceNode', 'targetNode', 'feedback']);
    expect(out).toMatchObject({ outcome: 'migrated', instance: 'web1', sourceNode: 'node1', targetNode: 'node2' });
    expect((out.feedback as string[]).at(-1)).toBe('* done');
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('without --json the feedback lines are printed as they come', async () => {
    const { c } = await h.cluster();
    const r = await cli(['instance', 'migrate', 'web2', '--non-live'], envFor(c));
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^\* migration policy: bandwidth 32 MiB\/s, max downtime 30 ms, .* on timeout abort$/);
    expect(lines[1]).toBe('Migrating instance web2');
    expect(lines.at(-1)).toBe('* done');
    expect(c.instance('web2').primaryNode).toBe('node3');
  });

  test('a prerequisite failure exits 3 with the JSON error and changes nothing', async () => {
    const { c } = await h.cluster();
    const r = await cli(['instance', 'migrate', 'web1', '--target-node', 'node3', '--json'], envFor(c));
    expect(r.code).toBe(3);
    expect(r.json()).toEqual({
      error: {
        type: 'PrereqFailed',
        code: 'wrong_input',
        message:
          'Instances with disk types drbd cannot be migrated to arbitrary nodes (neither an iallocator nor a target node can be passed)',
      },
    });
    const text = await cli(['instance', 'migrate', 'nosuch'], envFor(c));
    expect(text.code).toBe(3);
    expect(text.stderr.trim()).toBe(
      "Failure: prerequisites not met for this operation: error type: unknown_entity, error details: Instance 'nosuch' not known",
    );
    expect(c.instance('web1').primaryNode).toBe('node1');
  });

  test('an execution failure exits 1; the cleanup repairs it', async () => {
    const { c } = await h.cluster();
    const add = await cli(['sim', 'fault', 'add', '--rpc', 'blockdev_open', '--node', 'node2', '--mode', 'permanent', '--json'], envFor(c));
    expect(add.json()).toMatchObject({ id: 1, rpc: 'blockdev_open', node: 'node2', mode: 'permanent', hits: 0 });
    const r = await cli(['instance', 'migrate', 'web1', '--json'], envFor(c));
    expect(r.code).toBe(1);
    expect((r.json() as { error: { type: string; message: string } }).error).toMatchObject({ type: 'ExecutionFailed' });
    expect((r.json() as { error: { message: string } }).error.message).toContain('--cleanup web1');
    expect((await cli(['sim', 'fault', 'clear'], envFor(c))).code).toBe(0);
    const fix = await cli(['instance', 'migrate', 'web1', '--cleanup', '--json'], envFor(c));
    expect(fix.code).toBe(0);
    expect(fix.json()).toMatchObject({ outcome: 'cleaned-up' });
    expect(checkInvariants({ kind: 'cleaned-up' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });

  test('--submit returns the workflow ID at once; a second operation is refused as busy (exit 4)', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 10 } });
    const s = await cli(['instance', 'migrate', 'db1', '--submit', '--json'], envFor(c));
    expect(s.code).toBe(0);
    const { workflowId, runId } = s.json() as { workflowId: string; runId: string };
    expect(workflowId).toBe('instance/db1');
    const busy = await cli(['instance', 'migrate', 'db1', '--json'], envFor(c));
    expect(busy.code).toBe(4);
    expect(busy.json()).toEqual({
      error: {
        type: 'InstanceBusy',
        message: `instance db1 is busy: migrate is running (workflow instance/db1, run ${runId}); wait for it or abort it`,
      },
    });
    await h.env().client.workflow.getHandle(workflowId).result();
    expect(c.instance('db1').primaryNode).toBe('node3');
  });

  test('--dry-run prints the plan and changes nothing', async () => {
    const { c } = await h.cluster();
    const r = await cli(['instance', 'migrate', 'files1', '--dry-run', '--json'], envFor(c));
    expect(r.code).toBe(0);
    expect(r.json()).toMatchObject({ outcome: 'dry-run', targetNode: 'node3', plan: { operation: 'migrate', mode: 'live' } });
    expect(c.status('files1').runningOn).toEqual(['node2']);
  });

  test('usage errors exit 2', async () => {
    const { c } = await h.cluster();
    const both = await cli(['instance', 'migrate', 'web1', '--non-live', '--mode', 'live'], envFor(c));
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('Only one of the --non-live and --migration-mode options can be passed');
    expect((await cli(['instance', 'migrate'], envFor(c))).code).toBe(2);
    expect((await cli(['instance', 'migrate', 'web1', '--mode', 'fast'], envFor(c))).code).toBe(2);
  });

  test("Ganeti's options: --migration-mode (--mode kept as its alias), -n for --target-node, -f where Ganeti asks", async () => {
    const { c } = await h.cluster();
    const m = await cli(['instance', 'migrate', 'files1', '-n', 'node3', '--migration-mode', 'non-live', '--json'], envFor(c));
    expect(m.code, m.stderr).toBe(0);
    expect(m.json()).toMatchObject({ outcome: 'migrated', sourceNode: 'node2', targetNode: 'node3' });
    expect(c.log({ rpc: 'instance_migrate', outcome: 'ok' }).at(-1)!.detail).toMatch(/non-live$/);
    const alias = await cli(['instance', 'migrate', 'web1', '--mode', 'non-live', '--migration-mode', 'non-live', '--json'], envFor(c));
    expect(alias.code, alias.stderr).toBe(0);
    // --ignore-consistency asks unless the source is offline: without a terminal, -f answers.
    const refused = await cli(['instance', 'failover', 'web2', '--ignore-consistency'], envFor(c));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('Failover of web2 with --ignore-consistency needs a confirmation');
    expect(c.instance('web2').primaryNode).toBe('node2');
    const forced = await cli(['instance', 'failover', 'web2', '--ignore-consistency', '-f', '--json'], envFor(c));
    expect(forced.code, forced.stderr).toBe(0);
    expect(c.instance('web2').primaryNode).toBe('node3');
    // A source marked offline: nothing to ask.
    await c.config.modifyNode('node3', { offline: true });
    const offline = await cli(['instance', 'failover', 'web2', '--ignore-consistency', '--dry-run', '--json'], envFor(c));
    expect(offline.code, offline.stderr).toBe(0);
  });

  test('sim reset asks, and refuses while operations run on the cluster', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 10 } });
    expect((await cli(['sim', 'reset'], envFor(c))).code).toBe(2);
    const s = await cli(['instance', 'migrate', 'db1', '--submit'], envFor(c));
    expect(s.code).toBe(0);
    const busy = await cli(['sim', 'reset', '-f', '--json'], envFor(c));
    expect(busy.code).toBe(4);
    expect(busy.json()).toMatchObject({ error: { type: 'ClusterBusy', message: expect.stringContaining('instance/db1') } });
    await h.env().client.workflow.getHandle('instance/db1').result();
    expect(c.instance('db1').primaryNode).toBe('node3');
    const reset = await cli(['sim', 'reset', '--force', '--json'], envFor(c));
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.json()).toEqual({ home: c.home });
    expect(c.instance('db1').primaryNode).toBe('node1');
  });

  test('an unreachable server exits 5', async () => {
    const { c } = await h.cluster();
    const r = await cli(['instance', 'migrate', 'web1', '--json'], { ...envFor(c), TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(r.code).toBe(5);
    expect((r.json() as { error: { type: string } }).error.type).toBe('Unreachable');
  });
});

describe('sim commands', () => {
  test('sim status --json has exactly the documented shape with DRBD state names', async () => {
    const { c } = await h.cluster();
    const r = await cli(['sim', 'status', 'web1', '--json'], envFor(c));
    expect(r.json()).toEqual({
      instance: 'web1',
      runningOn: ['node1'],
      disks: [
        {
          index: 0,
          nodes: {
            node1: { role: 'Primary', connection: 'Connected', disk: 'UpToDate', dualPrimary: false },
            node2: { role: 'Secondary', connection: 'Connected', disk: 'UpToDate', dualPrimary: false },
          },
        },
      ],
    });
  });

  test('sim inject breaks things on purpose', async () => {
    const { c } = await h.cluster();
    expect((await cli(['sim', 'inject', 'web1', '--node', 'node2', '--state', 'degraded'], envFor(c))).code).toBe(0);
    expect(c.status('web1').disks[0]!.nodes.node2).toMatchObject({ connection: 'StandAlone', disk: 'Inconsistent' });
    expect((await cli(['sim', 'inject', 'web1', '--node', 'node3', '--state', 'running'], envFor(c))).code).toBe(0);
    expect(c.status('web1').runningOn).toEqual(['node1', 'node3']);
    expect((await cli(['sim', 'inject', 'web1', '--node', 'node1', '--state', 'exploded'], envFor(c))).code).toBe(2);
    expect((await cli(['sim', 'inject', 'files1', '--node', 'node1', '--state', 'standalone'], envFor(c))).code).toBe(2);
  });

  test('sim reset creates the default cluster in an empty home', async () => {
    const home = mkdtempSync(join(tmpdir(), 'ganeti-temporal-cli-'));
    try {
      const none = await cli(['instance', 'list'], { GANETI_TEMPORAL_HOME: home });
      expect(none.code).toBe(5);
      expect((await cli(['sim', 'reset'], { GANETI_TEMPORAL_HOME: home })).code).toBe(0);
      const list = await cli(['instance', 'list', '--json'], { GANETI_TEMPORAL_HOME: home });
      expect((list.json() as unknown[]).length).toBe(5);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('failover and node commands', () => {
  test('instance failover --json fails the instance over and exits 0', async () => {
    const { c } = await h.cluster();
    const r = await cli(['instance', 'failover', 'web1', '--json', '--reason', 'kernel update'], envFor(c));
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ outcome: 'failed-over', instance: 'web1', sourceNode: 'node1', targetNode: 'node2' });
    expect(
      checkInvariants({ kind: 'failed-over', source: 'node1', target: 'node2', sourceOnline: true }, c.instance('web1'), c.status('web1')),
    ).toEqual([]);
    expect(c.log({ rpc: 'instance_shutdown', outcome: 'ok' })[0]!.detail).toBe('kernel update');
  });

  test('a dead primary: power off, mark it offline, fail over', async () => {
    const { c } = await h.cluster();
    expect((await cli(['sim', 'power', 'node2', 'off'], envFor(c))).code).toBe(0);
    const refused = await cli(['instance', 'failover', 'web2', '--json'], envFor(c));
    expect(refused.code).toBe(1);
    expect((refused.json() as { error: { message: string } }).error.message).toBe('Disk 0 is degraded on target node, aborting failover');
    const mod = await cli(['node', 'modify', 'node2', '--offline', 'yes', '--json'], envFor(c));
    expect(mod.json()).toMatchObject({ name: 'node2', offline: true, primaryInstances: ['files1', 'web2'] });
    const r = await cli(['instance', 'failover', 'web2', '--json'], envFor(c));
    expect(r.code, r.stderr).toBe(0);
    expect((r.json() as { feedback: string[] }).feedback).toContain('Node node2 is offline, ignoring degraded disk 0 on target node node3');
    expect(c.status('web2').runningOn).toEqual(['node3']);
  });

  test('node list and node info', async () => {
    const { c } = await h.cluster();
    const list = (await cli(['node', 'list', '--json'], envFor(c))).json() as Array<Record<string, unknown>>;
    expect(list.map((n) => n.name)).toEqual(['node1', 'node2', 'node3']);
    const info = await cli(['node', 'info', 'node1', '--json'], envFor(c));
    expect(info.json()).toMatchObject({
      name: 'node1',
      master: true,
      offline: false,
      drained: false,
      primaryInstances: ['db1', 'web1'],
      secondaryInstances: ['web3'],
    });
    expect((await cli(['node', 'info', 'node9'], envFor(c))).code).toBe(3);
  });

  test('node modify refuses bad requests and changes nothing then', async () => {
    const { c } = await h.cluster();
    const master = await cli(['node', 'modify', 'node1', '--offline', 'yes'], envFor(c));
    expect(master.code).toBe(2);
    expect(master.stderr).toContain('The master node node1 cannot be marked offline');
    expect((await cli(['node', 'modify', 'node9', '--drained', 'yes'], envFor(c))).code).toBe(3);
    expect((await cli(['node', 'modify', 'node2'], envFor(c))).code).toBe(2);
    expect((await cli(['node', 'modify', 'node2', '--drained', 'maybe'], envFor(c))).code).toBe(2);
    expect(Object.values(c.cfg().nodes).map((n) => [n.offline, n.drained])).toEqual([
      [false, false],
      [false, false],
      [false, false],
    ]);
    expect((await cli(['node', 'modify', 'node3', '--drained', 'yes'], envFor(c))).code).toBe(0);
    expect(c.cfg().nodes.node3!.drained).toBe(true);
  });

  test('instance modify --admin-state, refused while an operation runs', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 10 } });
    const down = await cli(['instance', 'modify', 'web3', '--admin-state', 'down', '--json'], envFor(c));
    expect(down.code).toBe(0);
    expect(down.json()).toMatchObject({ name: 'web3', adminState: 'down' });
    const s = await cli(['instance', 'migrate', 'db1', '--submit'], envFor(c));
    expect(s.code).toBe(0);
    const busy = await cli(['instance', 'modify', 'db1', '--admin-state', 'down'], envFor(c));
    expect(busy.code).toBe(4);
    expect(c.instance('db1').adminState).toBe('up');
    await h.env().client.workflow.getHandle('instance/db1').result();
    expect((await cli(['instance', 'modify', 'db1', '--admin-state', 'sideways'], envFor(c))).code).toBe(2);
  });

  test('instance failover usage errors exit 2', async () => {
    const { c } = await h.cluster();
    expect((await cli(['instance', 'failover', 'web1', '--shutdown-timeout', '-5'], envFor(c))).code).toBe(2);
    expect((await cli(['instance', 'failover', 'web1', '--shutdown-timeout', 'soon'], envFor(c))).code).toBe(2);
    expect(c.instance('web1').primaryNode).toBe('node1');
  });
});

describe('instance start and shutdown', () => {
  test('shutdown and start --json, text feedback, --submit and --dry-run, with their aliases', async () => {
    const { c } = await h.cluster();
    const dry = await cli(['instance', 'shutdown', 'web1', '--dry-run', '--json'], envFor(c));
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.json()).toMatchObject({ outcome: 'dry-run', plan: { operation: 'shutdown', sourceNode: 'node1', targetNode: 'node1' } });
    expect(c.status('web1').runningOn).toEqual(['node1']);

    const down = await cli(['instance', 'shutdown', 'web1', '--timeout', '30', '--reason', 'kernel update', '--json'], envFor(c));
    expect(down.code, down.stderr).toBe(0);
    const out = down.json() as Record<string, unknown>;
    expect(Object.keys(out)).toEqual(['outcome', 'instance', 'sourceNode', 'targetNode', 'feedback']);
    expect(out).toEqual({ outcome: 'stopped', instance: 'web1', sourceNode: 'node1', targetNode: 'node1', feedback: [] });
    expect(c.log({ rpc: 'instance_shutdown', outcome: 'ok' })[0]!.detail).toBe('kernel update');
    expect(checkInvariants({ kind: 'stopped', remembered: true }, c.instance('web1'), c.status('web1'))).toEqual([]);

    const sub = await cli(['instance', 'startup', 'web1', '--submit', '--json'], envFor(c));
    expect(sub.code, sub.stderr).toBe(0);
    expect(sub.json()).toMatchObject({ workflowId: 'instance/web1' });
    await h.env().client.workflow.getHandle('instance/web1').result();
    expect(checkInvariants({ kind: 'started', remembered: true }, c.instance('web1'), c.status('web1'))).toEqual([]);

    const again = await cli(['instance', 'start', 'web1'], envFor(c));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trimEnd()).toBe(" - INFO: Instance 'web1' is already running on node1, not starting it");

    const stop = await cli(['instance', 'stop', 'web2', '--no-remember'], envFor(c));
    expect(stop.code, stop.stderr).toBe(0);
    expect(c.instance('web2').adminState).toBe('up');
    expect(c.status('web2').runningOn).toEqual([]);
  });
});
