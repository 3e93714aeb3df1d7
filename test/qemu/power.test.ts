/**
 * `instance shutdown` and `instance start` over real QEMU (tcg, the small test guest): the QEMU process
 * is gone after the shutdown (the guest ignores ACPI, so the timeout forces it), and the start boots a
 * new one on the primary whose guest runs. The hardware document is checked through the invariants.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, test } from 'vitest';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { pidAlive } from '../../adapters/qemu/process.js';
import { shutdownInstance, startupInstance } from '../../client/api.js';
import { outcomeOf } from '../helpers/harness.js';
import { mutatingSteps } from '../helpers/steps.js';
import { useQemuHarness } from './qemu-harness.js';

const h = useQemuHarness();

test('a DRBD instance shut down (forced after the timeout) and started again on its primary', async () => {
  const q = await h.cluster();
  const pid = q.pid('node1', 'web1')!;
  expect(pid).toBeGreaterThan(0);

  const down = await outcomeOf(shutdownInstance(h.env().client, { instance: 'web1', timeout: 2 }, { cluster: q.c.name }));
  expect(down.ok, down.ok ? '' : down.error.message).toBe(true);
  expect(pidAlive(pid)).toBe(false);
  expect(q.pid('node1', 'web1')).toBeNull();
  expect(checkInvariants({ kind: 'stopped', remembered: true }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);

  const up = await outcomeOf(startupInstance(h.env().client, { instance: 'web1' }, { cluster: q.c.name }));
  expect(up.ok, up.ok ? '' : up.error.message).toBe(true);
  const again = q.pid('node1', 'web1');
  expect(again).not.toBeNull();
  expect(again).not.toBe(pid);
  expect(await q.runState('node1', 'web1')).toBe('running');
  // The new guest boots and counts.
  let first = -1;
  for (let i = 0; i < 100 && first < 0; i++) {
    first = await q.heartbeat('node1', 'web1').catch(() => -1);
    if (first < 0) await sleep(50);
  }
  expect(first).toBeGreaterThanOrEqual(0);
  await sleep(300);
  expect(await q.heartbeat('node1', 'web1')).toBeGreaterThan(first);
  expect(checkInvariants({ kind: 'started', remembered: true }, q.c.instance('web1'), q.c.status('web1'))).toEqual([]);
  expect(mutatingSteps(q.c, 'web1').slice(1)).toEqual([
    'instance_shutdown@node1',
    'blockdev_shutdown@node1+node2',
    'blockdev_assemble(secondary)@node1+node2',
    'blockdev_assemble(primary)@node1',
    'instance_start@node1',
  ]);
});
