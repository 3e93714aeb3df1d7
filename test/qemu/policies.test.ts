/**
 * Migration policies on real QEMU, at the driver (adapters/qemu/node.ts, no Temporal): a guest that
 * dirties memory faster than the bandwidth cap (DIRTY_GUEST) does not converge without a policy,
 * and an abort leaves it running on the source; auto-converge, post-copy, pausing the source and a
 * raised downtime limit each complete it; the migration's end is seen by QEMU's event as soon as the
 * transfer ends. After each migration exactly one QEMU runs the guest, and its heartbeat counts on there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, test } from 'vitest';
import { rpcInstanceFor, type RpcInstance } from '../../domain/instance.js';
import { NodeRpcError, type MigrationControl, type MigrationStatusPayload } from '../../domain/ports.js';
import { readHeartbeat } from '../../adapters/qemu/guest.js';
import type { QemuNode } from '../../adapters/qemu/node.js';
import { pidAlive } from '../../adapters/qemu/process.js';
import { withQmp } from '../../adapters/qemu/qmp.js';
import type { QueryMigrate } from '../../adapters/qemu/status.js';
import type { TestCluster } from '../helpers/cluster.js';
import { DIRTY_BANDWIDTH, DIRTY_GUEST, useDriverFixture } from './qemu-harness.js';

const MiB = 1024 * 1024;

const fx = useDriverFixture(DIRTY_GUEST, 31);
/** web1 alone, 128 MiB, migrating at `bandwidth` MiB/s; node2's secondary IP is 127.0.1.32. */
const cluster = (bandwidth = DIRTY_BANDWIDTH) => fx.cluster({ migration_bandwidth: bandwidth });
const driver = fx.driver;

const ri = (c: TestCluster, node: string): RpcInstance => rpcInstanceFor(c.cfg(), c.instance('web1'), node);

const queryMigrate = (n: QemuNode) =>
  withQmp(n.qmpPath('web1'), (q) => q.execute<QueryMigrate & { ram?: { 'dirty-sync-count'?: number } }>('query-migrate'));
const runState = async (n: QemuNode) => (await withQmp(n.qmpPath('web1'), (q) => q.execute<{ status: string }>('query-status'))).status;

/** The heartbeat counter on `n`, then again `ms` later: it must have moved on. */
async function countsOn(n: QemuNode, ms = 300): Promise<[number, number]> {
  const a = await readHeartbeat(n.qmpPath('web1'));
  await sleep(ms);
  const b = await readHeartbeat(n.qmpPath('web1'));
  expect(a.booted && b.booted).toBe(true);
  return [a.counter, b.counter];
}

/** The QMP commands the driver sent to web1's QEMU on `n` (`stop`, `migrate …`). */
const journalCommands = (n: QemuNode): string[] =>
  (existsSync(n.journalPath('web1')) ? readFileSync(n.journalPath('web1'), 'utf8') : '')
    .split('\n')
    .filter((l) => l.includes(' -> '))
    .map((l) => l.slice(l.indexOf(' -> ') + 4));

/** The instance's live QEMU processes across both nodes (by recorded pid). */
const running = (...ns: QemuNode[]) => ns.filter((n) => !!n.locate('web1')?.pid).map((n) => n.node);

/** Boots web1 on node1, lets the guest dirty its working set, and starts the migration to node2. */
async function startMigration(c: TestCluster) {
  const n1 = driver(c, 'node1');
  const n2 = driver(c, 'node2');
  await n1.instanceStart(ri(c, 'node1'), 'test');
  for (let i = 0; i < 100 && !(await readHeartbeat(n1.qmpPath('web1')).catch(() => ({ booted: false }))).booted; i++) await sleep(50);
  await sleep(500);
  // DRBD dual-primary, so that the target may open the disk (what the workflow does before accept).
  await Promise.all([n1.drbdDisconnectNet(ri(c, 'node1')), n2.drbdDisconnectNet(ri(c, 'node2'))]);
  await Promise.all([n1.drbdAttachNet(ri(c, 'node1'), true), n2.drbdAttachNet(ri(c, 'node2'), true)]);
  await n1.blockdevOpen(ri(c, 'node1'), false);
  await n2.blockdevOpen(ri(c, 'node2'), false);
  const info = await n1.migrationInfo(ri(c, 'node1'));
  const { port } = await n2.acceptInstance(ri(c, 'node2'), info, '127.0.1.32');
  const target = { node: 'node2', ip: '127.0.1.32', port };
  return { n1, n2, info, target };
}

test('without a policy the dirtying guest does not converge; an abort leaves it running on the source', async () => {
  const c = await cluster();
  const { n1, n2, info, target } = await startMigration(c);
  await n1.instanceMigrate(ri(c, 'node1'), target, true);
  const t0 = Date.now();
  const samples: Array<{ at: number; status: string | undefined; remaining: number; syncs: number }> = [];
  while (Date.now() - t0 < 4000) {
    const m = await queryMigrate(n1);
    samples.push({ at: Date.now() - t0, status: m.status, remaining: m.ram?.remaining ?? 0, syncs: m.ram?.['dirty-sync-count'] ?? 0 });
    await sleep(100);
  }
  expect(samples.every((s) => s.status === 'active')).toBe(true);
  // Pass after pass over the working set, each finding it dirty again: remaining RAM refills to
  // most of the 2 MiB working set every time instead of draining.
  expect(samples.at(-1)!.syncs).toBeGreaterThanOrEqual(5);
  expect(Math.max(...samples.filter((s) => s.at > 2000).map((s) => s.remaining))).toBeGreaterThan(MiB / 2);
  expect((await n1.instanceGetMigrationStatus(ri(c, 'node1'))).status).toBe('active');

  // The abort (the completion timeout's, too): the target first, then the source.
  await n2.instanceFinalizeMigrationDst(ri(c, 'node2'), info, false);
  await n1.instanceFinalizeMigrationSrc(ri(c, 'node1'), false, true);
  expect(await runState(n1)).toBe('running');
  expect(running(n1, n2)).toEqual(['node1']);
  const [a, b] = await countsOn(n1);
  expect(b).toBeGreaterThan(a);
  expect(c.status('web1').processes).toEqual({ node1: { state: 'running' } });
  expect(pidAlive(n1.readMeta('web1')!.pid!)).toBe(true);
});

/** Policy settings at DIRTY_BANDWIDTH with the hvparams' downtime. */
const settings = (o: { autoConverge?: boolean; postcopy?: boolean } = {}) => ({
  bandwidth: DIRTY_BANDWIDTH,
  downtimeMs: 30,
  autoConverge: o.autoConverge ?? false,
  postcopy: o.postcopy ?? false,
});

/**
 * The master's wait (activities/hypervisor.ts): event waits of `pollMs` until the transfer ends.
 * Returns the last status, the statuses seen, and when the completing wait returned.
 */
async function waitEnd(n: QemuNode, inst: RpcInstance, pollMs = 5000, limitMs = 60_000) {
  const seen: MigrationStatusPayload[] = [];
  const t0 = Date.now();
  for (;;) {
    const st = await n.instanceWaitMigrationEvent(inst, pollMs);
    seen.push(st);
    if (!['active', 'setup', 'postcopy-active'].includes(st.status) || Date.now() - t0 > limitMs) return { st, seen, at: Date.now() };
  }
}

/** After a completed transfer: finalize both sides; the guest then runs on node2 only, counting on. */
async function finishOnTarget(c: TestCluster, n1: QemuNode, n2: QemuNode, info: string) {
  await n1.instanceFinalizeMigrationSrc(ri(c, 'node1'), true, true);
  await n2.instanceFinalizeMigrationDst(ri(c, 'node2'), info, true);
  expect(await runState(n2)).toBe('running');
  expect(running(n1, n2)).toEqual(['node2']);
  const [a, b] = await countsOn(n2);
  expect(b).toBeGreaterThan(a);
  expect(c.status('web1').processes).toEqual({ node2: { state: 'running' } });
}

test('the wait for the migration returns on QEMU’s completion event, long before its poll interval; auto-converge completes', async () => {
  const c = await cluster();
  const { n1, n2, info, target } = await startMigration(c);
  await n1.instanceMigrate(ri(c, 'node1'), target, true, settings({ autoConverge: true }));
  expect(n1.readMeta('web1')!.migration).toMatchObject({ settings: settings({ autoConverge: true }), downtimeMs: 30 });
  const { st, seen, at } = await waitEnd(n1, ri(c, 'node1'));
  expect(st.status).toBe('completed');
  // Auto-converge throttled the guest's vCPU until the dirty set fit the downtime.
  expect(Math.max(...seen.map((s) => s.throttlePercent ?? 0))).toBeGreaterThan(0);
  expect(seen[0]).toMatchObject({ status: 'active', downtimeLimitMs: 30 });
  expect(seen[0]!.remainingRam).toBeGreaterThan(0);
  expect(seen.some((s) => (s.passes ?? 0) >= 2 && (s.dirtyRate ?? 0) > 0)).toBe(true);
  // QEMU completed at about migrate + total-time; the 5 s wait returned well within a second of it.
  const m = await queryMigrate(n1);
  const completedAt = n1.readMeta('web1')!.migration!.startedAt + m['total-time']!;
  expect(at - completedAt).toBeLessThan(1000);
  expect(journalCommands(n1)).toContainEqual(expect.stringMatching(/"capability":"auto-converge","state":true/));
  await finishOnTarget(c, n1, n2, info);
});

test('post-copy completes the non-converging migration; from then on the source is never resumed', async () => {
  const c = await cluster();
  const { n1, n2, info, target } = await startMigration(c);
  const accepted = await n2.acceptInstance(ri(c, 'node2'), info, '127.0.1.32', { postcopy: true }); // a retry re-attaches
  expect(accepted.port).toBe(target.port);
  await n1.instanceMigrate(ri(c, 'node1'), target, true, settings({ postcopy: true }));
  await sleep(1500);
  expect((await n1.instanceGetMigrationStatus(ri(c, 'node1'))).status).toBe('active');
  const st = await n1.instanceMigrationControl(ri(c, 'node1'), { action: 'start-postcopy' });
  expect(['postcopy-active', 'completed']).toContain(st.status);
  // A retry from a fresh driver (a restarted agent) finds it done.
  expect(['postcopy-active', 'completed']).toContain(
    (await driver(c, 'node1').instanceMigrationControl(ri(c, 'node1'), { action: 'start-postcopy' })).status,
  );
  expect(journalCommands(n1).filter((l) => l.startsWith('migrate-start-postcopy'))).toHaveLength(1);
  expect(n1.readMeta('web1')!.migration).toMatchObject({ postcopy: true });
  // An abort now would lose the guest: the source refuses to be resumed (and is not), the running
  // destination refuses to be killed.
  const e = await driver(c, 'node1')
    .instanceFinalizeMigrationSrc(ri(c, 'node1'), false, true)
    .then(
      () => null,
      (x: unknown) => x as NodeRpcError,
    );
  expect(e).toBeInstanceOf(NodeRpcError);
  expect(e!.message).toMatch(/post-copy of web1 started: the destination holds the current state, refusing to resume this copy/);
  expect(await runState(n1)).not.toBe('running');
  expect(journalCommands(n1)).not.toContain('cont');
  expect((await waitEnd(n1, ri(c, 'node1'))).st.status).toBe('completed');
  await expect(n2.instanceFinalizeMigrationDst(ri(c, 'node2'), info, false)).rejects.toThrow(/refusing to stop it/);
  await finishOnTarget(c, n1, n2, info);
});

test('pause-source completes the non-converging migration; the paused destination is resumed at finalize', async () => {
  const c = await cluster();
  const { n1, n2, info, target } = await startMigration(c);
  await n1.instanceMigrate(ri(c, 'node1'), target, true, settings());
  await sleep(1500);
  await n1.instanceMigrationControl(ri(c, 'node1'), { action: 'pause-source' });
  expect(n1.readMeta('web1')!.migration).toMatchObject({ pausedSource: true });
  const { st } = await waitEnd(n1, ri(c, 'node1'));
  expect(st.status).toBe('completed');
  // Idempotent: the retry of the control that let it complete is answered, not refused.
  expect((await n1.instanceMigrationControl(ri(c, 'node1'), { action: 'pause-source' })).status).toBe('completed');
  expect(journalCommands(n1).filter((l) => l === 'stop')).toHaveLength(1);
  expect(await runState(n2)).toBe('paused');
  await finishOnTarget(c, n1, n2, info);
  expect(journalCommands(n2)).toContain('cont');
});

test('set-downtime raises the downtime limit while the migration runs, and then it converges; a control without a migration is refused', async () => {
  const c = await cluster();
  const { n1, n2, info, target } = await startMigration(c);
  const e = await n1.instanceMigrationControl(ri(c, 'node1'), { action: 'pause-source' }).then(
    () => null,
    (x: unknown) => x as NodeRpcError,
  );
  expect(e?.message).toMatch(/^Failed to control the migration: no migration of web1 is active on node1/);
  expect(await runState(n1)).toBe('running');
  // The driver checks the settings and controls itself too (the node activity has already).
  const bad = [
    n1.instanceMigrate(ri(c, 'node1'), target, true, { ...settings(), bandwidth: 0 }),
    n1.instanceMigrationControl(ri(c, 'node1'), { action: 'set-downtime', downtimeMs: -1 }),
    n1.instanceMigrationControl(ri(c, 'node1'), { action: 'reboot' } as unknown as MigrationControl),
    n2.acceptInstance(ri(c, 'node2'), info, '127.0.1.32', { postcopy: 'yes' } as unknown as { postcopy: boolean }),
  ];
  for (const p of bad) await expect(p).rejects.toThrow(/invalid (migration settings|migration control)/);
  expect(journalCommands(n1).some((l) => l.startsWith('migrate '))).toBe(false);
  await n1.instanceMigrate(ri(c, 'node1'), target, true);
  await sleep(1000);
  expect((await n1.instanceGetMigrationStatus(ri(c, 'node1'))).status).toBe('active');
  const st = await n1.instanceMigrationControl(ri(c, 'node1'), { action: 'set-downtime', downtimeMs: 3000 });
  expect(st.downtimeLimitMs).toBe(3000);
  expect(journalCommands(n1)).toContain('migrate-set-parameters {"downtime-limit":3000}');
  expect((await waitEnd(n1, ri(c, 'node1'))).st.status).toBe('completed');
  await finishOnTarget(c, n1, n2, info);
});
