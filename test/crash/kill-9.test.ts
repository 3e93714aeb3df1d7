/**
 * kill -9 of our own processes in the middle of an operation, each a real OS process (chaos/procs.ts):
 * a node agent SIGKILLed while it is inside each state-changing RPC of a migration and of a failover
 * (the RPC has done its work on the node, its answer is lost with the agent: a `hang-after` fault),
 * the orchestrator SIGKILLed mid-transfer, and the dev server SIGKILLed mid-transfer and restarted on
 * the same SQLite file. Each time the operation finishes normally within the RPC heartbeat timeout
 * plus the restart plus a few seconds — the RPC timeout classes are set to 10 minutes here, so only
 * the heartbeat can make that deadline — and the cluster is healthy afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, test } from 'vitest';
import { startFailover, startMigration } from '../../client/api.js';
import { clusterViolations, outcomeViolations, settle, waitForEnd } from '../../chaos/check.js';
import { createCrashCluster, type CrashCluster } from '../../chaos/cluster.js';
import { Stack } from '../../chaos/procs.js';

/** The RPC heartbeat timeout (s); the timeout classes are far longer, so only the heartbeat can rescue a call. */
const HB = 3;
/** Retry backoff, scheduling and a loaded machine. */
const SLACK = 8;

let c: CrashCluster;
let stack: Stack;
let client: Client;
/** How long each operation takes here without a kill (s): a killed run may take this plus the recovery. */
const baseline = { migrate: 0, failover: 0 };

beforeAll(async () => {
  c = await createCrashCluster({
    timing: {
      rpcHeartbeatTimeoutSec: HB,
      heartbeatTimeoutSec: HB,
      rpcTimeouts: { urgent: 600, normal: 600, slow: 600 },
      retryInitialIntervalMs: 100,
      retryMaximumIntervalMs: 500,
    },
  });
  stack = new Stack({ home: c.home, temporalCli: inject('temporalCli'), workflowBundlePath: inject('workflowBundlePath') });
  await stack.startAll(c.nodes());
  client = await stack.connect();
  for (const op of ['migrate', 'failover'] as const) {
    const t0 = Date.now();
    expect(await waitForEnd(client, await start(op), Date.now() + 90_000)).toMatchObject({ ok: true });
    baseline[op] = (Date.now() - t0) / 1000;
    await c.reset();
  }
}, 300_000);

afterAll(async () => {
  await stack?.killAll();
  c?.remove();
});

beforeEach(async () => {
  // A test that failed half-way may have left an operation running or an agent dead.
  for await (const wf of client.workflow.list({ query: 'ExecutionStatus = "Running"' })) {
    await client.workflow
      .getHandle(wf.workflowId, wf.runId)
      .terminate('test reset')
      .catch(() => undefined);
  }
  await c.reset();
  if (!stack.orchestrator?.alive) await stack.startOrchestrator();
  for (const n of c.nodes()) if (!stack.agents.get(n)?.alive) await stack.startAgent(n);
});

async function until(pred: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const since = (seq: number, rpc: string, node: string, outcome: 'ok' | 'fault') =>
  c.log().filter((e) => e.seq > seq && e.rpc === rpc && e.node === node && e.outcome === outcome);

function start(op: 'migrate' | 'failover'): Promise<WorkflowHandle> {
  return op === 'migrate'
    ? startMigration(client, { instance: 'web1' }, { cluster: c.name })
    : startFailover(client, { instance: 'web1', shutdownTimeout: 10 }, { cluster: c.name });
}

/**
 * The operation ends normally, the cluster is whole, and the time from the kill to the end stays
 * within `boundSec` plus what the operation takes without any kill.
 */
async function expectHealthyEnd(op: 'migrate' | 'failover', handle: WorkflowHandle, killedAt: number, boundSec: number) {
  const ended = await waitForEnd(client, handle, Date.now() + 90_000);
  const tookSec = (Date.now() - killedAt) / 1000;
  expect(ended).toEqual({ ok: true, outcome: op === 'migrate' ? 'migrated' : 'failed-over' });
  const bound = boundSec + baseline[op];
  expect(tookSec, `${tookSec.toFixed(1)} s from the kill to the end (bound ${bound.toFixed(1)} s)`).toBeLessThan(bound);
  await settle(c, 'web1');
  const kase =
    op === 'migrate'
      ? ({ kind: 'migrated', source: 'node1', target: 'node2' } as const)
      : ({ kind: 'failed-over', source: 'node1', target: 'node2', sourceOnline: true } as const);
  expect(outcomeViolations(c, 'web1', kase)).toEqual([]);
  expect(clusterViolations(c, 'web1')).toEqual([]);
}

/** web1 migrates node1 → node2 (DRBD); its failover goes the same way. Node = where the RPC is killed. */
const CASES = [
  { rpc: 'blockdev_close', node: 'node2', op: 'migrate' }, // M5: demote the target
  { rpc: 'drbd_disconnect_net', node: 'node2', op: 'migrate' }, // M6: standalone
  { rpc: 'drbd_attach_net', node: 'node1', op: 'migrate' }, // M6: dual-master (waits for the peer)
  { rpc: 'blockdev_open', node: 'node1', op: 'migrate' }, // M7: open for dual use
  { rpc: 'accept_instance', node: 'node2', op: 'migrate' }, // M8
  { rpc: 'instance_migrate', node: 'node1', op: 'migrate' }, // M9: the transfer goes on without the agent
  { rpc: 'instance_finalize_migration_src', node: 'node1', op: 'migrate' }, // M11: the source is stopped
  { rpc: 'instance_finalize_migration_dst', node: 'node2', op: 'migrate' }, // M11: the target runs
  { rpc: 'instance_shutdown', node: 'node1', op: 'failover' }, // F3
  { rpc: 'instance_start', node: 'node2', op: 'failover' }, // F7
] as const;

describe('a node agent killed inside an RPC', () => {
  test.each(CASES)('inside $rpc on $node: the retried call re-attaches and the $op finishes', async ({ rpc, node, op }) => {
    const seq0 = c.hw.read().state.logSeq;
    await c.addFault({ rpc, node, mode: 'hang-after', times: 1 });
    const handle = await start(op);
    // The fault is logged first, then the call's own work on the node: then the agent holds an answer it never sends.
    await until(() => since(seq0, rpc, node, 'fault').length === 1, `${rpc} on ${node}`);
    const faultSeq = since(seq0, rpc, node, 'fault')[0]!.seq;
    await until(() => since(faultSeq, rpc, node, 'ok').length >= 1, `${rpc} on ${node} to take effect`);
    const killedAt = Date.now();
    await stack.agents.get(node)!.kill();
    await stack.startAgent(node);
    const restartSec = (Date.now() - killedAt) / 1000;
    await expectHealthyEnd(op, handle, killedAt, HB + restartSec + SLACK);
    const retried = c.log().filter((e) => e.rpc === rpc && e.node === node && e.outcome === 'ok' && e.at > killedAt);
    expect(retried.length, `${rpc} re-sent to the new agent on ${node}`).toBeGreaterThanOrEqual(1);
    const answeredSec = (retried[0]!.at - killedAt) / 1000;
    expect(answeredSec, `the retried ${rpc} answered ${answeredSec.toFixed(1)} s after the kill`).toBeLessThan(HB + restartSec + SLACK);
  });
});

describe('the orchestrator and the dev server killed mid-transfer', () => {
  async function midTransfer(): Promise<WorkflowHandle> {
    const seq0 = c.hw.read().state.logSeq;
    const handle = await start('migrate');
    await until(() => since(seq0, 'instance_migrate', 'node1', 'ok').length === 1, 'the memory transfer');
    return handle;
  }

  test('the orchestrator: its replacement picks the migration up and finishes it', async () => {
    const handle = await midTransfer();
    const killedAt = Date.now();
    await stack.orchestrator!.kill();
    await stack.startOrchestrator();
    const restartSec = (Date.now() - killedAt) / 1000;
    // A workflow task in flight on the dead worker times out after 10 s (the workflow task timeout).
    await expectHealthyEnd('migrate', handle, killedAt, restartSec + 10 + SLACK);
  });

  test('the dev server: restarted on the same database file, the migration goes on', async () => {
    const handle = await midTransfer();
    const killedAt = Date.now();
    await stack.server!.kill();
    await sleep(500);
    await stack.startServer();
    const restartSec = (Date.now() - killedAt) / 1000;
    await expectHealthyEnd('migrate', handle, killedAt, HB + restartSec + SLACK);
  });
});
