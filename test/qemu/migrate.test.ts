/**
 * The migrate workflow over real QEMU (tcg, 128 MiB guests built from source at test time): the
 * guest keeps running on the destination after a live migration, non-live migration, an abort
 * before completion, a destination killed mid-flight, and node agents restarted mid-migration.
 * Every test checks the real processes (pids, QMP run states, the guest's heartbeat) and the
 * hardware document through the invariant checker.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { operationResult } from '../../client/api.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { pidAlive } from '../../adapters/qemu/process.js';
import { withQmp } from '../../adapters/qemu/qmp.js';
import { failure, outcomeOf, start, waitForProgress } from '../helpers/harness.js';
import { spawnQemuAgent } from '../helpers/processes.js';
import { mutatingCounts, mutatingSteps, withoutProgress } from '../helpers/steps.js';
import { useQemuHarness, type QemuCluster } from './qemu-harness.js';

const h = useQemuHarness();

/** The guest runs on `node` (QMP `running`) and its heartbeat advances from at least `from`. */
async function expectGuestRunsOn(q: QemuCluster, node: string, instance: string, from: number): Promise<number> {
  expect(await q.runState(node, instance)).toBe('running');
  const first = await q.heartbeat(node, instance);
  expect(first).toBeGreaterThanOrEqual(from);
  await sleep(300);
  const later = await q.heartbeat(node, instance);
  expect(later).toBeGreaterThan(first);
  return later;
}

/** Waits until the source reports that real memory is moving (not just set up). */
async function waitForTransfer(q: QemuCluster, node: string, instance: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = await withQmp(q.driver(node).qmpPath(instance), (c) =>
      c.execute<{ status?: string; ram?: { transferred: number } }>('query-migrate'),
    );
    if (m.status === 'active' && (m.ram?.transferred ?? 0) > 1024 * 1024) return;
    if (Date.now() > deadline) throw new Error(`no memory transfer under way (${JSON.stringify(m)})`);
    await sleep(20);
  }
}

describe('live migration', () => {
  test('a DRBD instance: the guest keeps running on the destination, counting on from the source', async () => {
    const q = await h.cluster({ hvparams: { migration_bandwidth: 64 } });
    const srcPid = q.pid('node1', 'web1')!;
    expect(srcPid).toBeGreaterThan(0);
    await sleep(200);
    const before = await q.heartbeat('node1', 'web1');
    const sampler = q.sampleHeartbeat('node1', 'web1');

    const r = await outcomeOf(start(h.env(), q.c, { instance: 'web1' }).then((hd) => operationResult(hd)));
    const srcLast = await sampler.stop();
    expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
    if (!r.ok) return;
    expect(r.result).toMatchObject({ outcome: 'migrated', sourceNode: 'node1', targetNode: 'node2' });
    expect(withoutProgress(r.result.feedback)).toContain('* memory transfer complete');

    // The source QEMU is gone, the destination's runs the same guest, which counts on.
    expect(pidAlive(srcPid)).toBe(false);
    expect(q.meta('node1', 'web1')).toBeNull();
    const dstPid = q.pid('node2', 'web1');
    expect(dstPid).not.toBeNull();
    expect(srcLast).not.toBeNull();
    expect(srcLast!).toBeGreaterThan(before);
    await expectGuestRunsOn(q, 'node2', 'web1', srcLast!);

    // Ganeti's KVM sequence on both sides, as sent.
    const src = q.journal('node1', 'web1');
    const dst = q.journal('node2', 'web1');
    expect(dst[0]).toMatch(/^migrate-set-capabilities .*"return-path","state":true/);
    const mig = src.findIndex((l) => l.startsWith('migrate {"uri":"tcp:127.0.1.12:'));
    expect(mig).toBeGreaterThan(0);
    expect(src.slice(0, mig)).toEqual([
      expect.stringMatching(/^migrate-set-capabilities .*"return-path","state":true/),
      `migrate-set-parameters {"max-bandwidth":${64 * 1024 * 1024},"downtime-limit":30,"max-postcopy-bandwidth":${64 * 1024 * 1024}}`,
    ]);
    expect(src.at(-1)).toBe('quit');
    expect(src).not.toContain('stop');

    // The hardware document mirrors the real processes; DRBD went back to single-primary.
    expect(q.c.status('web1').processes).toEqual({ node2: { state: 'running' } });
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
    expect(mutatingSteps(q.c, 'web1')).toEqual([
      'instance_start(test boot)@node1',
      'blockdev_close@node2',
      'drbd_disconnect_net@node1+node2',
      'drbd_attach_net(dual-master)@node1+node2',
      'blockdev_open(shared)@node1+node2',
      'accept_instance(127.0.1.12)@node2',
      expect.stringMatching(/^instance_migrate\(node2:\d+ live\)@node1$/),
      'instance_finalize_migration_src(success)@node1',
      'instance_finalize_migration_dst(success)@node2',
      'blockdev_close@node1',
      'drbd_disconnect_net@node1+node2',
      'drbd_attach_net(single-master)@node1+node2',
    ]);
  });

  test('a sharedfile instance takes its real disk image along', async () => {
    const q = await h.cluster({ instances: ['files1'], hvparams: { migration_bandwidth: 256 } });
    const image = `${q.c.home}/shared/files1/disk0.img`;
    const r = await outcomeOf(start(h.env(), q.c, { instance: 'files1', targetNode: 'node3' }).then((hd) => operationResult(hd)));
    expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
    expect(q.pid('node2', 'files1')).toBeNull();
    await expectGuestRunsOn(q, 'node3', 'files1', 0);
    const blocks = await withQmp(q.driver('node3').qmpPath('files1'), (c) =>
      c.execute<Array<{ device: string; inserted?: { file: string } }>>('query-block'),
    );
    expect(blocks.map((b) => b.inserted?.file)).toContain(image);
    expect(checkInvariants({ kind: 'migrated', source: 'node2', target: 'node3' }, q.c.instance('files1'), q.c.status('files1'))).toEqual(
      [],
    );
  });
});

test('non-live: the source is stopped before the transfer and the destination resumed at finalize', async () => {
  const q = await h.cluster({ hvparams: { migration_bandwidth: 64 } });
  await sleep(200);
  const sampler = q.sampleHeartbeat('node1', 'web1');
  const r = await outcomeOf(start(h.env(), q.c, { instance: 'web1', mode: 'non-live' }).then((hd) => operationResult(hd)));
  const srcLast = await sampler.stop();
  expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
  expect(mutatingSteps(q.c, 'web1')).toContainEqual(expect.stringMatching(/^instance_migrate\(node2:\d+ non-live\)@node1$/));
  const src = q.journal('node1', 'web1');
  expect(src.indexOf('stop')).toBeGreaterThanOrEqual(0);
  expect(src.indexOf('stop')).toBeLessThan(src.findIndex((l) => l.startsWith('migrate ')));
  expect(q.journal('node2', 'web1')).toContain('cont'); // QEMU leaves the destination paused after a stopped source
  await expectGuestRunsOn(q, 'node2', 'web1', srcLast!);
  expect(q.c.status('web1').processes).toEqual({ node2: { state: 'running' } });
  expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
});

describe('failures during the memory transfer', () => {
  // 32 MiB of guest RAM at 4 MiB/s: the transfer runs for ~8 s, long enough to break it on purpose.
  const SLOW = { hvparams: { migration_bandwidth: 4 } };

  test('an abort before completion leaves the source running and the destination gone', async () => {
    const q = await h.cluster(SLOW);
    const srcPid = q.pid('node1', 'web1')!;
    // The status poll fails for good after a few answers: the workflow aborts while QEMU is transferring.
    await q.c.addFault({ rpc: 'instance_get_migration_status', node: 'node1', mode: 'permanent', skip: 5 });
    const handle = await start(h.env(), q.c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    await waitForTransfer(q, 'node1', 'web1');
    const dstPid = q.pid('node2', 'web1')!;
    expect(dstPid).toBeGreaterThan(0);
    const during = await q.heartbeat('node1', 'web1');

    const f = failure(await outcomeOf(operationResult(handle)));
    expect(f.message).toBe('Could not migrate instance web1: injected failure in instance_get_migration_status on node1');
    expect(f.feedback).toContain('Migration failed, aborting');

    // Real state: the destination QEMU was killed (Ganeti aborts there first, so the source's
    // migration has failed or, if it had not noticed yet, was cancelled) and the source runs on.
    expect(pidAlive(dstPid)).toBe(false);
    expect(q.meta('node2', 'web1')).toBeNull();
    expect(q.pid('node1', 'web1')).toBe(srcPid);
    const m = await withQmp(q.driver('node1').qmpPath('web1'), (c) => c.execute<{ status: string }>('query-migrate'));
    expect(['failed', 'cancelled']).toContain(m.status);
    await expectGuestRunsOn(q, 'node1', 'web1', during);

    expect(mutatingSteps(q.c, 'web1')).toEqual(
      expect.arrayContaining(['instance_finalize_migration_dst(failure)@node2', 'instance_finalize_migration_src(failure)@node1']),
    );
    expect(q.c.status('web1').processes).toEqual({ node1: { state: 'running' } });
    expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
  });

  test('killing the destination QEMU mid-flight fails the migration, which aborts and reverts', async () => {
    const q = await h.cluster(SLOW);
    const srcPid = q.pid('node1', 'web1')!;
    const handle = await start(h.env(), q.c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    await waitForTransfer(q, 'node1', 'web1');
    const dstPid = q.pid('node2', 'web1')!;
    const during = await q.heartbeat('node1', 'web1');
    process.kill(dstPid, 'SIGKILL');

    const f = failure(await outcomeOf(operationResult(handle)));
    expect(f.message).toBe('Could not migrate instance web1: hypervisor returned failure');
    expect(f.feedback).toContain('Migration failed, aborting');

    expect(pidAlive(dstPid)).toBe(false);
    expect(q.meta('node2', 'web1')).toBeNull();
    expect(q.pid('node1', 'web1')).toBe(srcPid);
    await expectGuestRunsOn(q, 'node1', 'web1', during);
    expect(mutatingSteps(q.c, 'web1')).toEqual(
      expect.arrayContaining(['instance_finalize_migration_dst(failure)@node2', 'instance_finalize_migration_src(failure)@node1']),
    );
    expect(q.c.status('web1').processes).toEqual({ node1: { state: 'running' } });
    expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
  });
});

test('node agents restarted mid-migration re-attach to the running QEMU processes and complete', async () => {
  // ~4 s of transfer at 8 MiB/s; the wait's heartbeat times out after 2 s and is retried on the new agent.
  const q = await h.cluster({ hvparams: { migration_bandwidth: 8 }, timing: { heartbeatTimeoutSec: 2 } });
  const srcPid = q.pid('node1', 'web1')!;
  const handle = await start(h.env(), q.c, { instance: 'web1' });
  await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
  await waitForTransfer(q, 'node1', 'web1');
  const dstPid = q.pid('node2', 'web1')!;
  const during = await q.heartbeat('node1', 'web1');

  // Both agents go away; their QEMU processes do not.
  await q.w.stop(q.w.agents.get('node1')!);
  await q.w.stop(q.w.agents.get('node2')!);
  await sleep(1000);
  expect(pidAlive(srcPid)).toBe(true);
  expect(pidAlive(dstPid)).toBe(true);
  // New agents with new drivers: nothing is shared in memory with the old ones.
  await q.w.agent('node1');
  await q.w.agent('node2');

  const r = await outcomeOf(operationResult(handle));
  expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
  expect(pidAlive(srcPid)).toBe(false);
  expect(q.pid('node2', 'web1')).toBe(dstPid); // the incoming process was re-attached, not replaced
  await expectGuestRunsOn(q, 'node2', 'web1', during);
  const counts = mutatingCounts(q.c, 'web1');
  expect(counts['accept_instance@node2']).toBe(1);
  expect(counts['instance_migrate@node1']).toBe(1);
  expect(q.journal('node1', 'web1').filter((l) => l.startsWith('migrate {')).length).toBe(1);
  const history = await handle.fetchHistory();
  const retried = (history.events ?? []).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
  expect(retried.length).toBeGreaterThanOrEqual(1); // the memory-transfer wait ran again, on the new agent
  expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
});

test('a node-agent process killed mid-migration leaves its QEMU running; a new agent finishes with it', async () => {
  const q = await h.cluster({ hvparams: { migration_bandwidth: 8 }, timing: { heartbeatTimeoutSec: 2 } });
  // node2's agent runs as its own process (the worker entry point, qemu backend), so that the
  // destination QEMU is the child of a process that gets SIGKILLed.
  await q.w.stop(q.w.agents.get('node2')!);
  const agent = await spawnQemuAgent({ node: 'node2', cluster: q.c.name, home: q.c.home, address: h.env().address, kernel: q.kernel });
  try {
    const handle = await start(h.env(), q.c, { instance: 'web1' });
    await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
    await waitForTransfer(q, 'node1', 'web1');
    const dstPid = q.pid('node2', 'web1')!;
    expect(parentOf(dstPid)).not.toBe(process.pid); // started by the agent process, not by this one
    agent.kill('SIGKILL');
    await new Promise((r) => agent.once('exit', r));
    await sleep(500);
    expect(pidAlive(dstPid)).toBe(true); // detached: its own process group, not tied to the agent
    expect(await q.runState('node2', 'web1')).toBe('inmigrate');

    await q.w.agent('node2');
    const r = await outcomeOf(operationResult(handle));
    expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
    expect(q.pid('node2', 'web1')).toBe(dstPid);
    await expectGuestRunsOn(q, 'node2', 'web1', 0);
    expect(mutatingCounts(q.c, 'web1')['accept_instance@node2']).toBe(1);
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
  } finally {
    if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
  }
});

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

test('a failure after the memory transfer leaves the guest on the target, and --cleanup adopts it there', async () => {
  const q = await h.cluster({ hvparams: { migration_bandwidth: 64 } });
  const srcPid = q.pid('node1', 'web1')!;
  await q.c.addFault({ rpc: 'instance_finalize_migration_dst', node: 'node2', mode: 'permanent' });
  const f = failure(await outcomeOf(start(h.env(), q.c, { instance: 'web1' }).then((hd) => operationResult(hd))));
  expect(f.message).toMatch(/^Could not finalize instance migration: node2: injected failure in instance_finalize_migration_dst on node2/);
  // Past the point of no return: the source quit, the destination runs the guest, the primary is unchanged.
  expect(pidAlive(srcPid)).toBe(false);
  expect(await q.runState('node2', 'web1')).toBe('running');
  expect(q.c.instance('web1').primaryNode).toBe('node1');

  await q.c.clearFaults();
  const r = await outcomeOf(start(h.env(), q.c, { instance: 'web1', cleanup: true }).then((hd) => operationResult(hd)));
  expect(r.ok && r.result.outcome, r.ok ? '' : r.error.message).toBe('cleaned-up');
  expect(r.ok && r.result.feedback).toContain('* instance running on: node2');
  expect(q.c.instance('web1').primaryNode).toBe('node2');
  await expectGuestRunsOn(q, 'node2', 'web1', 0);
  expect(checkInvariants({ kind: 'cleaned-up' }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
});
