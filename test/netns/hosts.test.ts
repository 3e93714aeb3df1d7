/**
 * Nodes as network hosts (issue 15): every node is a network namespace with a management link
 * (its agent reaches Temporal over it) and a replication link (its secondary IP); each node agent
 * runs as its own process inside its namespace with the QEMU backend, and starts its guests there;
 * Temporal, the orchestrator and this test stay in the root namespace. The migration stream goes
 * from the source's namespace to the target's over the veth links, and network faults are real:
 * a partition of the target's replication link during the transfer (refused, or silent until the
 * progress timeout), a partition of the source's agent from Temporal during the wait, a bandwidth
 * cap on the target's link, added latency on it. After each, the guest runs on exactly one node,
 * counting on, and the configuration agrees.
 *
 * The cap uses tbf. Latency uses `tc netem` where the kernel has it; this machine's kernel has no
 * sch_netem, so there a netfilter queue holds every packet of the link instead (netns-faults.ts).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { operationResult } from '../../client/api.js';
import { buildGuest } from '../../adapters/qemu/guest.js';
import { withQmp } from '../../adapters/qemu/qmp.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { PROJECT_ROOT } from '../../worker/temporal-cli.js';
import { createTestCluster } from '../helpers/cluster.js';
import { failure, outcomeOf, start } from '../helpers/harness.js';
import { NetHosts } from '../../worker/netns.js';
import { addLatency, capBandwidth, heal, partition, removeLatency, roundTripMs, uncap } from '../helpers/netns-faults.js';
import { ensureCommand } from '../helpers/system-packages.js';
import { spawnQemuAgent } from '../helpers/processes.js';
import { startServer, Workers } from '../helpers/temporal.js';
import { QemuCluster, TEST_GUEST, TEST_MEMORY, killClusterQemus } from '../qemu/qemu-harness.js';

const NODES = ['node1', 'node2', 'node3'];
let hosts: NetHosts;
let env: TestWorkflowEnvironment;
/** Where the agents reach the dev server: the root namespace's management address, relayed to loopback. */
let temporalAddress = '';
let guestDir = '';
let kernel = '';
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  ensureCommand('as', 'binutils');
  ensureCommand('ip', 'iproute2');
  ensureCommand('nft', 'nftables');
  hosts = NetHosts.create(NODES);
  env = await startServer();
  temporalAddress = await hosts.forward(Number(env.address.split(':').pop()));
  guestDir = mkdtempSync(join(tmpdir(), 'ganeti-temporal-guest-'));
  kernel = buildGuest(guestDir, TEST_GUEST);
});

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

afterAll(async () => {
  await env?.teardown();
  hosts?.teardown();
  if (guestDir) rmSync(guestDir, { recursive: true, force: true });
});

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

/**
 * A cluster on the hosts: web1 (DRBD, node1 → node2) booted for real inside node1's namespace, an
 * agent process per node in its namespace, the orchestrator in this process.
 */
async function hostCluster(hvparams: Record<string, unknown>): Promise<QemuCluster> {
  const c = await createTestCluster({
    configure: (cfg) => {
      for (const [name, n] of Object.entries(cfg.nodes)) {
        n.primaryIp = hosts.host(name).mgmtIp;
        n.secondaryIp = hosts.host(name).replIp;
      }
      for (const name of Object.keys(cfg.instances)) if (name !== 'web1') delete cfg.instances[name];
      const inst = cfg.instances.web1!;
      inst.beparams.maxmem = TEST_MEMORY;
      inst.beparams.minmem = TEST_MEMORY / 2;
      inst.hvparams = { ...inst.hvparams, ...hvparams };
    },
  });
  const w = new Workers(env, c);
  const q = new QemuCluster(c, w, kernel);
  cleanups.push(async () => {
    for await (const wf of env.client.workflow.list({ query: 'ExecutionStatus = "Running"' })) {
      await env.client.workflow
        .getHandle(wf.workflowId, wf.runId)
        .terminate('test cleanup')
        .catch(() => undefined);
    }
    await w.stopAll();
    await killClusterQemus(c.home);
    c.remove();
  });
  const primary = c.instance('web1').primaryNode;
  hosts.exec(primary, process.execPath, [
    '--import',
    'tsx',
    join(PROJECT_ROOT, 'test/netns/boot-guest.ts'),
    c.home,
    primary,
    kernel,
    JSON.stringify(q.ri('web1', primary)),
  ]);
  const agents = await Promise.all(
    NODES.map((node) =>
      spawnQemuAgent({ node, cluster: c.name, home: c.home, address: temporalAddress, kernel, netns: hosts.host(node).ns }),
    ),
  );
  cleanups.push(() => Promise.all(agents.map(stopProcess)).then(() => undefined));
  await w.orchestrator();
  return q;
}

/** The namespace a process runs in (`ip netns identify`). */
function namespaceOf(pid: number): string {
  return execFileSync('ip', ['netns', 'identify', String(pid)], { encoding: 'utf8' }).trim();
}

/** The guest runs on `node` (QMP `running`) and its heartbeat advances from at least `from`. */
async function expectGuestRunsOn(q: QemuCluster, node: string, from: number): Promise<number> {
  expect(await q.runState(node, 'web1')).toBe('running');
  const first = await q.heartbeat(node, 'web1');
  expect(first).toBeGreaterThanOrEqual(from);
  await sleep(300);
  const later = await q.heartbeat(node, 'web1');
  expect(later).toBeGreaterThan(first);
  return later;
}

/** Waits until the source reports real memory moving (not just set up). */
async function waitForTransfer(q: QemuCluster, node: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = await withQmp(q.driver(node).qmpPath('web1'), (c) =>
      c.execute<{ status?: string; ram?: { transferred: number } }>('query-migrate'),
    );
    if (m.status === 'active' && (m.ram?.transferred ?? 0) > 1024 * 1024) return;
    if (Date.now() > deadline) throw new Error(`no memory transfer under way (${JSON.stringify(m)})`);
    await sleep(20);
  }
}

const progressPercents = (feedback: string[]): number[] =>
  feedback.flatMap((l) => {
    const m = /^\* memory transfer progress: ([\d.]+) %$/.exec(l);
    return m ? [Number(m[1])] : [];
  });

describe('nodes as network hosts', () => {
  test('a live migration crosses the replication links from namespace to namespace; the guest runs throughout', async () => {
    const q = await hostCluster({ migration_bandwidth: 64 });
    const srcPid = q.pid('node1', 'web1')!;
    expect(namespaceOf(srcPid)).toBe(hosts.host('node1').ns);
    await sleep(200);
    const before = await q.heartbeat('node1', 'web1');
    const received = hosts.receivedBytes('node2', 'r');

    const r = await outcomeOf(start(env, q.c, { instance: 'web1' }).then((h) => operationResult(h)));
    expect(r.ok, r.ok ? '' : r.error.message).toBe(true);

    // The stream went over node2's replication link: at least the guest's non-zero memory.
    expect(hosts.receivedBytes('node2', 'r') - received).toBeGreaterThan(TEST_GUEST.fillMb! * 1024 * 1024);
    expect(q.journal('node1', 'web1').some((l) => l.startsWith(`migrate {"uri":"tcp:${hosts.host('node2').replIp}:`))).toBe(true);
    const dstPid = q.pid('node2', 'web1')!;
    expect(namespaceOf(dstPid)).toBe(hosts.host('node2').ns); // started by node2's agent, in its namespace
    expect(q.pid('node1', 'web1')).toBeNull();
    await expectGuestRunsOn(q, 'node2', before);
    expect(q.c.instance('web1').primaryNode).toBe('node2');
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
  });

  test('the target cut off its replication network during the transfer: abort and revert, the guest runs on the source', async () => {
    const q = await hostCluster({ migration_bandwidth: 4 });
    const handle = await start(env, q.c, { instance: 'web1' });
    await waitForTransfer(q, 'node1');
    const during = await q.heartbeat('node1', 'web1');
    partition(hosts, 'node2', 'r');
    cleanups.push(() => heal(hosts, 'node2', 'r'));

    const r = await outcomeOf(operationResult(handle));
    const err = failure(r);
    expect(err.message).toMatch(/Could not migrate instance web1/);
    expect(err.feedback).toContain('Migration failed, aborting');
    // Exactly one copy: the source's, running and counting on; the target's incoming QEMU is gone.
    expect(q.pid('node2', 'web1')).toBeNull();
    await expectGuestRunsOn(q, 'node1', during);
    expect(q.c.instance('web1').primaryNode).toBe('node1');
    expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
  });

  test('the target silently cut off its replication network: the stalled transfer hits its progress timeout, abort and revert', async () => {
    const q = await hostCluster({ migration_bandwidth: 4 });
    const handle = await start(env, q.c, { instance: 'web1', policy: { progressTimeoutSec: 3, onTimeout: 'abort' } });
    await waitForTransfer(q, 'node1');
    const during = await q.heartbeat('node1', 'web1');
    partition(hosts, 'node2', 'r', { silent: true }); // no reset: the stream just stops moving
    cleanups.push(() => heal(hosts, 'node2', 'r'));
    const t0 = Date.now();

    const err = failure(await outcomeOf(operationResult(handle)));
    expect(Date.now() - t0).toBeLessThan(3_000 + 30_000);
    expect(err.feedback).toContain('Migration timed out, aborting');
    expect(err.feedback.some((l) => /progress timeout/.test(l))).toBe(true);
    expect(q.pid('node2', 'web1')).toBeNull();
    await expectGuestRunsOn(q, 'node1', during);
    expect(q.c.instance('web1').primaryNode).toBe('node1');
    expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
  });

  test("the source's agent cut off from Temporal during the transfer wait: the wait is retried when the link returns, the migration completes", async () => {
    const q = await hostCluster({ migration_bandwidth: 4 });
    const handle = await start(env, q.c, { instance: 'web1' });
    await waitForTransfer(q, 'node1');
    partition(hosts, 'node1', 'm');
    cleanups.push(() => heal(hosts, 'node1', 'm'));
    // Longer than the heartbeat timeout (3 s): the server gives up on the attempt under way.
    await sleep(8_000);
    heal(hosts, 'node1', 'm');

    const r = await outcomeOf(operationResult(handle));
    expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
    const history = await handle.fetchHistory();
    const retried = (history.events ?? []).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
    expect(retried.length).toBeGreaterThanOrEqual(1);
    expect(q.pid('node1', 'web1')).toBeNull();
    await expectGuestRunsOn(q, 'node2', 0);
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
  });

  test("a bandwidth cap on the target's link: the transfer takes longer with progress lines rising, the guest keeps running", async () => {
    const q = await hostCluster({ migration_bandwidth: 64 });
    capBandwidth(hosts, 'node2', 'r', 40); // 5 MB/s, against QEMU's 64 MiB/s
    cleanups.push(() => uncap(hosts, 'node2', 'r'));
    const before = await q.heartbeat('node1', 'web1');
    const t0 = Date.now();
    const r = await outcomeOf(start(env, q.c, { instance: 'web1' }).then((h) => operationResult(h)));
    const took = Date.now() - t0;
    expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
    if (!r.ok) return;
    // The guest's non-zero memory alone needs about 32 MiB / 5 MB/s ≈ 6.7 s through the cap.
    expect(took).toBeGreaterThan(5_000);
    const pct = progressPercents(r.result.feedback);
    expect(pct.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < pct.length; i++) expect(pct[i]!).toBeGreaterThan(pct[i - 1]!);
    await expectGuestRunsOn(q, 'node2', before);
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
  });

  test("added latency and a bandwidth cap on the target's link: the migration completes over the slower link, progress lines rising, the guest keeps running", async () => {
    const q = await hostCluster({ migration_bandwidth: 64 });
    const bare = roundTripMs(hosts, 'node1', 'node2', 'r');
    const method = await addLatency(hosts, 'node2', 'r', 40);
    cleanups.push(() => removeLatency(hosts, 'node2', 'r'));
    capBandwidth(hosts, 'node2', 'r', 80); // 10 MB/s
    cleanups.push(() => uncap(hosts, 'node2', 'r'));
    const delayed = roundTripMs(hosts, 'node1', 'node2', 'r');
    expect(delayed, `round trip ${bare} ms before, ${delayed} ms with ${method}`).toBeGreaterThanOrEqual(bare + 75);
    console.log(`latency added by ${method}: round trip ${bare.toFixed(2)} ms before, ${delayed.toFixed(2)} ms after`);
    const before = await q.heartbeat('node1', 'web1');
    const sent = hosts.receivedBytes('node2', 'r');
    const r = await outcomeOf(start(env, q.c, { instance: 'web1' }).then((h) => operationResult(h)));
    expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
    if (!r.ok) return;
    expect(hosts.receivedBytes('node2', 'r') - sent).toBeGreaterThan(16 * 1024 * 1024);
    const pct = progressPercents(r.result.feedback);
    expect(pct.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < pct.length; i++) expect(pct[i]!).toBeGreaterThan(pct[i - 1]!);
    await expectGuestRunsOn(q, 'node2', before);
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
    // The link is as fast as before once the latency is removed.
    await removeLatency(hosts, 'node2', 'r');
    expect(roundTripMs(hosts, 'node1', 'node2', 'r')).toBeLessThan(bare + 20);
  });
});
