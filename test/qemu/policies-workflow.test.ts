/**
 * Migration policies through the migrate workflow over real QEMU: a guest that dirties memory faster
 * than the bandwidth cap (DIRTY_GUEST at DIRTY_BANDWIDTH) does not converge without a policy, and
 * the completion timeout aborts it — the guest runs on at the source; auto-converge and post-copy
 * complete it, and so does force-complete. After each, exactly one QEMU runs the guest and its
 * heartbeat counts on there.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, test } from 'vitest';
import { operationResult } from '../../client/api.js';
import { withQmp } from '../../adapters/qemu/qmp.js';
import type { MigrationPolicyInput } from '../../domain/policy.js';
import { forceCompleteUpdate } from '../../workflows/messages.js';
import { outcomeOf, start } from '../helpers/harness.js';
import { DIRTY_BANDWIDTH, DIRTY_GUEST, useQemuHarness, type QemuCluster } from './qemu-harness.js';

const h = useQemuHarness(DIRTY_GUEST);

/** 128 MiB guests: 32 s per GiB is a 4 s completion timeout. */
const COMPLETION_SEC_PER_GIB = 32;
const COMPLETION_SEC = 4;

async function cluster(): Promise<QemuCluster> {
  const q = await h.cluster({ hvparams: { migration_bandwidth: DIRTY_BANDWIDTH } });
  await sleep(500); // the guest dirties its working set
  return q;
}

/** Exactly one QEMU runs web1, on `node`, and its guest counts on. */
async function runsOnlyOn(q: QemuCluster, node: string): Promise<void> {
  for (const n of ['node1', 'node2', 'node3']) expect(q.pid(n, 'web1') !== null, n).toBe(n === node);
  expect(await q.runState(node, 'web1')).toBe('running');
  const a = await q.heartbeat(node, 'web1');
  await sleep(300);
  expect(await q.heartbeat(node, 'web1')).toBeGreaterThan(a);
  expect(q.c.status('web1').processes).toEqual({ [node]: { state: 'running' } });
}

const migrate = (q: QemuCluster, policy: MigrationPolicyInput) => start(h.env(), q.c, { instance: 'web1', policy });

/** The source reports a transfer under way. */
async function transferring(q: QemuCluster): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = await withQmp(q.driver('node1').qmpPath('web1'), (c) => c.execute<{ status?: string }>('query-migrate')).catch(() => null);
    if (m?.status === 'active') return;
    if (Date.now() > deadline) throw new Error('no transfer under way');
    await sleep(50);
  }
}

test('without a policy the transfer does not converge: the completion timeout aborts it in time, the guest runs on at the source', async () => {
  const q = await cluster();
  const t0 = Date.now();
  const r = await outcomeOf(
    migrate(q, {
      autoConverge: false,
      postcopy: false,
      completionTimeoutSecPerGiB: COMPLETION_SEC_PER_GIB,
      progressTimeoutSec: 0,
      onTimeout: 'abort',
    }).then((hd) => operationResult(hd)),
  );
  const took = Date.now() - t0;
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.error.message).toMatch(/completion timeout/);
  expect(took).toBeLessThan((COMPLETION_SEC + 5) * 1000);
  await runsOnlyOn(q, 'node1');
});

test('auto-converge completes it', async () => {
  const q = await cluster();
  const r = await outcomeOf(
    migrate(q, { autoConverge: true, completionTimeoutSecPerGiB: 0, progressTimeoutSec: 0 }).then((hd) => operationResult(hd)),
  );
  expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
  expect(q.journal('node1', 'web1')).toContainEqual(expect.stringMatching(/"capability":"auto-converge","state":true/));
  await runsOnlyOn(q, 'node2');
});

test('post-copy on timeout completes it; the source is quit, never resumed', async () => {
  const q = await cluster();
  const r = await outcomeOf(
    migrate(q, { postcopy: true, onTimeout: 'postcopy', completionTimeoutSecPerGiB: 16, progressTimeoutSec: 0 }).then((hd) =>
      operationResult(hd),
    ),
  );
  expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
  const src = q.journal('node1', 'web1');
  expect(src).toContain('migrate-start-postcopy');
  expect(src).not.toContain('cont');
  expect(q.journal('node2', 'web1')[0]).toMatch(/"capability":"postcopy-ram","state":true/);
  await runsOnlyOn(q, 'node2');
});

test('force-complete completes it (the source paused, the destination resumed)', async () => {
  const q = await cluster();
  const hd = await migrate(q, { completionTimeoutSecPerGiB: 0, progressTimeoutSec: 0 });
  await transferring(q);
  await sleep(1000);
  const acc = await hd.executeUpdate(forceCompleteUpdate, { args: [{ reason: 'test' }] });
  expect(acc.action).toBe('pause-source');
  const r = await outcomeOf(operationResult(hd));
  expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
  expect(q.journal('node1', 'web1')).toContain('stop');
  expect(q.journal('node2', 'web1')).toContain('cont');
  await runsOnlyOn(q, 'node2');
});
