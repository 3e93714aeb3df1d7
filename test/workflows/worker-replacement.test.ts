/**
 * Worker replacement (graceful stops, not crashes): the orchestrator worker stopped mid-resync and
 * replaced finishes the migration with no step repeated; a node agent stopped mid-transfer is replaced
 * and its long wait re-attaches to the running migration. The crash tests proper, where real OS
 * processes are killed with SIGKILL, are test/crash/kill-9.test.ts and `npm run chaos`.
 */
import { expect, test } from 'vitest';
import { operationResult } from '../../client/api.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { outcomeOf, start, useHarness, waitForProgress } from '../helpers/harness.js';
import { mutatingCounts } from '../helpers/steps.js';

const h = useHarness();

/** Every state-changing RPC of one DRBD live migration of web1 (node1 → node2), exactly once each. */
const ONCE_EACH = {
  'blockdev_close@node2': 1, // M5
  'blockdev_close@node1': 1, // M13
  'drbd_disconnect_net@node1': 2, // M6, M14
  'drbd_disconnect_net@node2': 2,
  'drbd_attach_net@node1': 2, // dual-master, single-master
  'drbd_attach_net@node2': 2,
  'blockdev_open@node1': 1,
  'blockdev_open@node2': 1,
  'accept_instance@node2': 1,
  'instance_migrate@node1': 1,
  'instance_finalize_migration_src@node1': 1,
  'instance_finalize_migration_dst@node2': 1,
};

test('the orchestrator stopped mid-resync is replaced and finishes the migration with no duplicate step', async () => {
  const { c, w } = await h.cluster({ sim: { timeFactor: 10, reconnectResync: 1500 } });
  const handle = await start(h.env(), c, { instance: 'web1' });
  await waitForProgress(handle, (p) => p.phase === 'settle-sync');
  const resyncing = c.status('web1').disks[0]!.nodes.node1!.connection;
  expect(['SyncSource', 'SyncTarget']).toContain(resyncing);

  await w.stop(w.orch!);
  await new Promise((r) => setTimeout(r, 1000)); // the resync goes on without an orchestrator
  const serialBefore = c.cfg().serial;
  await w.orchestrator();

  const r = await outcomeOf(operationResult(handle));
  expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
  if (!r.ok) return;
  expect(r.result.feedback.some((l) => l.startsWith('   - progress:'))).toBe(true);
  expect(r.result.feedback.at(-1)).toBe('* done');
  expect(mutatingCounts(c, 'web1')).toEqual(ONCE_EACH);
  expect(c.cfg().serial).toBe(serialBefore); // the primary had been written once, before the crash
  expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);

  // The history shows each activity scheduled exactly as often as one run needs.
  const history = await handle.fetchHistory();
  const scheduled = (history.events ?? [])
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
    .filter((n): n is string => !!n);
  const count = (n: string) => scheduled.filter((x) => x === n).length;
  expect(count('acceptInstance')).toBe(1);
  expect(count('instanceMigrate')).toBe(1);
  expect(count('setInstancePrimary')).toBe(1);
  expect(count('waitForDiskSync')).toBe(6); // both nodes, three waits
});

test('a node agent stopped mid-transfer is replaced and its wait re-attaches to the running migration', async () => {
  const { c, w } = await h.cluster({ sim: { timeFactor: 8 }, timing: { heartbeatTimeoutSec: 2 } });
  const handle = await start(h.env(), c, { instance: 'web1' });
  await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
  await new Promise((r) => setTimeout(r, 300));
  await w.stop(w.agents.get('node1')!);
  await new Promise((r) => setTimeout(r, 1000));
  await w.agent('node1');

  const r = await outcomeOf(operationResult(handle));
  expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
  expect(mutatingCounts(c, 'web1')).toEqual(ONCE_EACH);
  expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  const history = await handle.fetchHistory();
  const started = (history.events ?? []).filter(
    (e) => e.activityTaskStartedEventAttributes && (e.activityTaskStartedEventAttributes.attempt ?? 1) > 1,
  );
  expect(started.length).toBeGreaterThanOrEqual(1); // the wait ran again, on the new agent
});
