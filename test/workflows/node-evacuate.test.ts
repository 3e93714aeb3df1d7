/**
 * `node migrate` and `node failover` on a real dev server over the simulated cluster: every primary
 * instance moves as its own child operation under the concurrency limits, failures and busy
 * instances are handled one by one, a dry run moves nothing, an abort leaves every instance on
 * exactly one node, and the parent refuses a foreign workflow ID.
 */
import { describe, expect, test } from 'vitest';
import { operationResult } from '../../client/api.js';
import { abortOperation, jobInfo } from '../../client/jobs.js';
import { setPower } from '../../adapters/sim/cluster.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { orchestratorQueue } from '../../domain/naming.js';
import { nodeMigrateWorkflow } from '../../workflows/node-workflows.js';
import type { MigrationPolicyInput } from '../../domain/policy.js';
import { nodeProgressQuery, type ProgressView } from '../../workflows/messages.js';
import { decodePayload } from '../helpers/codec.js';
import { childIntervals, evacuationCluster, maxOverlap, nodeOutcome, startNodeFail, startNodeMigrate } from '../helpers/evacuate.js';
import { configShape, hardwareShape, start, useHarness } from '../helpers/harness.js';
import { mutatingSteps } from '../helpers/steps.js';
import type { TestCluster } from '../helpers/cluster.js';

const h = useHarness();

/** Each instance runs on exactly one node, and that node is its configured primary. */
function onExactlyOneNode(c: TestCluster, names: string[]): string[] {
  return names.flatMap((n) => {
    const st = c.status(n);
    const primary = c.instance(n).primaryNode;
    return st.runningOn.length === 1 && st.runningOn[0] === primary
      ? []
      : [`${n}: runs on [${st.runningOn.join(',')}], primary ${primary}`];
  });
}

describe('node migrate', () => {
  test('moves every primary instance off the node under the limits, each as its own child, invariants hold', async () => {
    const { c } = await h.cluster(evacuationCluster(4, 9));
    const before = c.cfg();
    const names = Object.keys(before.instances);
    const hd = await startNodeMigrate(h.env(), c, { node: 'node1', limits: { maxConcurrent: 3, maxOutgoing: 3, maxIncoming: 1 } });
    expect(hd.workflowId).toBe('node/node1');
    const r = await nodeOutcome(hd);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.result.errors).toBe(0);
    expect(r.result.instances.map((e) => [e.instance, e.state, e.outcome, e.workflowId])).toEqual(
      names.map((n) => [n, 'done', 'migrated', `instance/${n}`]),
    );
    for (const n of names) {
      const secondary = before.instances[n]!.disks[0]!.drbd!.nodes[1];
      expect(c.instance(n).primaryNode).toBe(secondary);
      expect(checkInvariants({ kind: 'migrated', source: 'node1', target: secondary }, c.instance(n), c.status(n))).toEqual([]);
    }
    const iv = await childIntervals(h.env(), r.result);
    expect(maxOverlap(iv)).toBeLessThanOrEqual(3);
    expect(maxOverlap(iv, (i) => i.target)).toBeLessThanOrEqual(1);
    expect(maxOverlap(iv)).toBeGreaterThanOrEqual(2);
    expect(r.result.feedback.at(-1)).toBe('All instances migrated successfully.');
    const view = await hd.query(nodeProgressQuery);
    expect(view.counts).toEqual({ done: 9, running: 0, waiting: 0, failed: 0, total: 9 });
    expect((await hd.describe()).typedSearchAttributes.get({ name: 'GanetiPhase', type: 'KEYWORD' })).toBe('done');
  });

  test('the limits hold across node operations running at once (slots leased in the configuration)', async () => {
    const { c } = await h.cluster(
      evacuationCluster(3, 6, {
        configure: (cfg) => {
          for (const n of ['vm002', 'vm004', 'vm006']) cfg.instances[n]!.primaryNode = 'node3';
        },
      }),
    );
    const limits = { maxConcurrent: 2, maxOutgoing: 2, maxIncoming: 2 };
    const [a, b] = await Promise.all([
      startNodeMigrate(h.env(), c, { node: 'node1', limits }),
      startNodeMigrate(h.env(), c, { node: 'node3', limits }),
    ]);
    const [ra, rb] = await Promise.all([nodeOutcome(a), nodeOutcome(b)]);
    expect(ra.ok && rb.ok).toBe(true);
    if (!ra.ok || !rb.ok) return;
    const iv = [...(await childIntervals(h.env(), ra.result)), ...(await childIntervals(h.env(), rb.result))];
    expect(iv).toHaveLength(6);
    expect(maxOverlap(iv)).toBeLessThanOrEqual(2);
    expect(
      [...ra.result.feedback, ...rb.result.feedback].some((l) => / waits for a slot: \d+ evacuation migrations run in the cluster/.test(l)),
    ).toBe(true);
    expect(c.cfg().leases).toEqual({});
  });

  test('the outgoing limit caps how many leave the node at once', async () => {
    const { c } = await h.cluster(evacuationCluster(5, 8));
    const r = await nodeOutcome(await startNodeMigrate(h.env(), c, { node: 'node1', limits: { maxConcurrent: 10, maxOutgoing: 2 } }));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const iv = await childIntervals(h.env(), r.result);
    expect(maxOverlap(iv, (i) => i.source)).toBeLessThanOrEqual(2);
  });

  test('passes its migration policy to every child: each resolves it from the request and acts on it (post-copy on timeout)', async () => {
    // A guest dirtying 40 MiB/s at 4 MiB/s never converges: each child's completion timeout of
    // 16 s/GiB × 128 MiB = 2 s hits, and its onTimeout switches it to post-copy.
    const { c } = await h.cluster(evacuationCluster(3, 2, { sim: { timeFactor: 50, guestDirtyRate: 40 } }));
    const policy = {
      bandwidth: 4,
      maxDowntimeMs: 250,
      autoConverge: false,
      postcopy: true,
      completionTimeoutSecPerGiB: 16,
      progressTimeoutSec: 60,
      onTimeout: 'postcopy',
    } satisfies MigrationPolicyInput;
    const r = await nodeOutcome(await startNodeMigrate(h.env(), c, { node: 'node1', policy, limits: { maxConcurrent: 2 } }));
    expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
    if (!r.ok) return;
    expect(r.result.instances.map((e) => [e.instance, e.state, e.outcome])).toEqual([
      ['vm001', 'done', 'migrated'],
      ['vm002', 'done', 'migrated'],
    ]);
    for (const e of r.result.instances) {
      const child = h.env().client.workflow.getHandle(e.workflowId!);
      const history = (await child.fetchHistory()).events ?? [];
      // The child's input carries the policy as given.
      const started = history[0]!.workflowExecutionStartedEventAttributes!;
      expect(await decodePayload(started.input!.payloads![0]!)).toMatchObject({ instance: e.instance, policy });
      // It resolved every field from the request.
      const info = await jobInfo(h.env().client, e.instance);
      const view = (info.progress as ProgressView).migrationPolicy;
      expect(view).toMatchObject({ policy, completionTimeoutSec: 2 });
      expect(Object.values(view!.sources)).toEqual(Array(7).fill('request'));
      // The hypervisor got its bandwidth, downtime and capabilities.
      const migrate = history.find((ev) => ev.activityTaskScheduledEventAttributes?.activityType?.name === 'instanceMigrate');
      const args = await Promise.all(migrate!.activityTaskScheduledEventAttributes!.input!.payloads!.map((p) => decodePayload(p)));
      expect(args[3]).toEqual({ bandwidth: 4, downtimeMs: 250, autoConverge: false, postcopy: true });
      expect(mutatingSteps(c, e.instance)).toContain('instance_migration_control(start-postcopy)@node1');
      expect(info.result).toMatchObject({ outcome: 'migrated' });
      const feedback = (info.progress as ProgressView).feedback;
      expect(feedback.some((l) => l.startsWith('* the memory transfer did not complete within its completion timeout (2 s)'))).toBe(true);
      expect(feedback).toContain(
        `* switching the memory transfer to post-copy (the completion timeout hit); ${e.instance} now runs on ${e.targetNode}`,
      );
      const secondary = c.instance(e.instance).disks[0]!.drbd!.nodes.find((n) => n !== 'node1')!;
      expect(c.instance(e.instance).primaryNode).toBe(secondary);
      expect(
        checkInvariants({ kind: 'migrated', source: 'node1', target: secondary }, c.instance(e.instance), c.status(e.instance)),
      ).toEqual([]);
    }
  });

  test('a failing child does not stop the others; the result lists it with its error', async () => {
    const { c } = await h.cluster(evacuationCluster(3, 4));
    await c.addFault({ rpc: 'accept_instance', node: 'node2', mode: 'permanent' });
    const r = await nodeOutcome(await startNodeMigrate(h.env(), c, { node: 'node1' }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.type).toBe('ExecutionFailed');
    expect(r.error.message).toBe('There were 2 errors during the node migration.');
    const byName = Object.fromEntries(r.result!.instances.map((e) => [e.instance, e]));
    // vm001 and vm003 have node2 as secondary; vm002 and vm004 node3.
    expect(byName.vm001).toMatchObject({ state: 'failed', error: { type: 'ExecutionFailed' } });
    expect(byName.vm003).toMatchObject({ state: 'failed' });
    expect(byName.vm002).toMatchObject({ state: 'done', outcome: 'migrated' });
    expect(byName.vm004).toMatchObject({ state: 'done', outcome: 'migrated' });
    expect(onExactlyOneNode(c, ['vm001', 'vm002', 'vm003', 'vm004'])).toEqual([]);
    expect(c.instance('vm001').primaryNode).toBe('node1');
  });

  test('a child left for an operator marks the node operation GanetiNeedsOperator', async () => {
    const { c } = await h.cluster(evacuationCluster(3, 2));
    await c.addFault({ rpc: 'instance_finalize_migration_src', node: 'node1', mode: 'permanent' });
    const hd = await startNodeMigrate(h.env(), c, { node: 'node1', limits: { maxConcurrent: 1 } });
    const r = await nodeOutcome(hd);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.result!.instances.map((e) => [e.state, e.needsOperator])).toEqual([
      ['failed', true],
      ['failed', true],
    ]);
    expect(r.result!.instances[0]!.repair).toMatch(/instance migrate --cleanup vm001/);
    expect((await hd.describe()).typedSearchAttributes.get({ name: 'GanetiNeedsOperator', type: 'BOOL' })).toBe(true);
    expect((await hd.query(nodeProgressQuery)).needsOperator).toBe(true);
  });

  test('--stop-on-failure starts nothing after the first failure', async () => {
    const { c } = await h.cluster(evacuationCluster(3, 4));
    await c.addFault({ rpc: 'accept_instance', node: 'node2', mode: 'permanent' });
    const r = await nodeOutcome(
      await startNodeMigrate(h.env(), c, { node: 'node1', stopOnFailure: true, limits: { maxConcurrent: 1, maxOutgoing: 1 } }),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.result!.instances.map((e) => e.state)).toEqual(['failed', 'not-started', 'not-started', 'not-started']);
    expect(c.instance('vm002').primaryNode).toBe('node1');
    expect(onExactlyOneNode(c, ['vm001', 'vm002', 'vm003', 'vm004'])).toEqual([]);
  });

  test('an instance busy with another operation is waited for, then moved', async () => {
    const { c } = await h.cluster(evacuationCluster(3, 2, { sim: { timeFactor: 20 } }));
    const other = await start(h.env(), c, { instance: 'vm001', dryRun: true });
    c.hook('node1', 'instance-migrate', 'pre', '10-slow', 'sleep 1');
    const hd = await startNodeMigrate(h.env(), c, { node: 'node1' });
    await operationResult(other);
    const r = await nodeOutcome(hd);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.result.feedback).toContain('Instance vm001 is busy: another operation runs on it (instance/vm001); waiting for it');
    expect(r.result.instances.map((e) => e.state)).toEqual(['done', 'done']);
    expect(c.instance('vm001').primaryNode).toBe('node2');
  });

  test('--dry-run checks every child and moves nothing', async () => {
    const { c } = await h.cluster(evacuationCluster(3, 4));
    const cfg0 = configShape(c);
    const hw0 = hardwareShape(c);
    const r = await nodeOutcome(await startNodeMigrate(h.env(), c, { node: 'node1', dryRun: true, drain: true }));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.result.instances.map((e) => e.outcome)).toEqual(['dry-run', 'dry-run', 'dry-run', 'dry-run']);
    expect(configShape(c)).toEqual(cfg0);
    expect(hardwareShape(c)).toEqual(hw0);
  });

  test('--drain marks the node drained before anything moves', async () => {
    const { c } = await h.cluster(evacuationCluster(3, 2));
    const r = await nodeOutcome(await startNodeMigrate(h.env(), c, { node: 'node1', drain: true }));
    expect(r.ok).toBe(true);
    expect(c.cfg().nodes.node1!.drained).toBe(true);
    expect(r.ok && r.result.feedback[0]).toBe('Marking node node1 drained');
  });

  test('abort half-way: nothing more starts, every instance is on exactly one node, moved or untouched', async () => {
    const { c } = await h.cluster(evacuationCluster(3, 6, { sim: { timeFactor: 10 } }));
    const hd = await startNodeMigrate(h.env(), c, { node: 'node1', limits: { maxConcurrent: 2, maxOutgoing: 2 } });
    for (;;) {
      const v = await hd.query(nodeProgressQuery).catch(() => null);
      if (v && v.counts.done >= 1 && v.counts.running >= 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await abortOperation(h.env().client, 'node/node1', 'maintenance cancelled');
    const r = await nodeOutcome(hd);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.type).toBe('Aborted');
    const states = r.result!.instances.map((e) => e.state);
    expect(states).toContain('not-started');
    expect(states.every((s) => ['done', 'aborted', 'not-started'].includes(s))).toBe(true);
    const names = Object.keys(c.cfg().instances);
    expect(onExactlyOneNode(c, names)).toEqual([]);
    for (const e of r.result!.instances) {
      expect(c.instance(e.instance).primaryNode).toBe(e.state === 'done' ? e.targetNode : 'node1');
    }
  });

  test('externally mirrored instances are placed by the parent: distinct targets under I=1, never overcommitted', async () => {
    const { c } = await h.cluster(
      evacuationCluster(4, 1, {
        configure: (cfg) => {
          const base = cfg.instances.vm001!;
          for (let i = 1; i <= 3; i++) {
            const name = `sf${i}`;
            cfg.instances[name] = {
              ...base,
              name,
              uuid: `inst-sf${i}`,
              diskTemplate: 'sharedfile',
              disks: [{ uuid: `disk-sf${i}`, size: 1024, mode: 'rw', path: `${name}/disk0.img` }],
              nics: [{ ...base.nics[0]!, uuid: `nic-sf${i}`, mac: `aa:00:00:00:10:0${i}` }],
            };
          }
          // node4 has room for one more instance only: the parent must not send two there at once.
          cfg.nodes.node4!.memoryTotal = 1024 + 128 + 64;
        },
      }),
    );
    const r = await nodeOutcome(
      await startNodeMigrate(h.env(), c, { node: 'node1', limits: { maxConcurrent: 4, maxOutgoing: 4, maxIncoming: 1 } }),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const sf = r.result.instances.filter((e) => e.instance.startsWith('sf'));
    expect(sf.map((e) => e.state)).toEqual(['done', 'done', 'done']);
    expect(sf.filter((e) => e.targetNode === 'node4').length).toBeLessThanOrEqual(1);
    for (const e of sf) {
      expect(c.instance(e.instance).primaryNode).toBe(e.targetNode);
      expect(
        checkInvariants({ kind: 'migrated', source: 'node1', target: e.targetNode! }, c.instance(e.instance), c.status(e.instance)),
      ).toEqual([]);
    }
    const iv = await childIntervals(h.env(), r.result);
    expect(maxOverlap(iv, (i) => i.target)).toBeLessThanOrEqual(1);
  });

  test('refused under another workflow ID than node/<node>, nothing changed', async () => {
    const { c } = await h.cluster(evacuationCluster(3, 2));
    const cfg0 = configShape(c);
    const hd = await h.env().client.workflow.start(nodeMigrateWorkflow, {
      taskQueue: orchestratorQueue(c.name),
      workflowId: 'evacuate-node1',
      args: [{ node: 'node1' }],
    });
    const r = await nodeOutcome(hd);
    expect(!r.ok && r.error.type).toBe('WrongWorkflowId');
    expect(configShape(c)).toEqual(cfg0);
  });
});

describe('node failover', () => {
  test('fails over every instance of an offline, powered-off node with --ignore-consistency', async () => {
    const { c } = await h.cluster(evacuationCluster(3, 4, { configure: (cfg) => void (cfg.cluster.masterNode = 'node2') }));
    await c.hw.mutate((s, now) => setPower(s, now, 'node1', false));
    await c.config.modifyNode('node1', { offline: true });
    const r = await nodeOutcome(await startNodeFail(h.env(), c, { node: 'node1', ignoreConsistency: true }));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.result.instances.map((e) => e.outcome)).toEqual(['failed-over', 'failed-over', 'failed-over', 'failed-over']);
    for (const e of r.result.instances) {
      expect(
        checkInvariants(
          { kind: 'failed-over', source: 'node1', target: e.targetNode!, sourceOnline: false },
          c.instance(e.instance),
          c.status(e.instance),
        ),
      ).toEqual([]);
    }
    expect(r.result.feedback.at(-1)).toBe('All 4 instance(s) failed over successfully.');
  });
});
