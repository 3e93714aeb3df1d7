/**
 * The history of a DRBD live migration does not grow with the resync (issue 12): the waits are
 * heartbeating activities, not timer loops. With 1 s and with 60 s of resync after each reconnection
 * the commands and activity events are the same; no timer, no retried attempt;
 * and every workflow task is woken by an activity's completion (or the start). How many workflow
 * tasks there are varies from run to run, whatever the wait: two per-node RPCs in parallel complete
 * in one workflow task or in two (`npm run bench:history` shows it on the demo stack).
 */
import type { temporal } from '@temporalio/proto';
import { describe, expect, test } from 'vitest';
import { operationResult } from '../../client/api.js';
import { start, useHarness } from '../helpers/harness.js';

const h = useHarness();

type Event = temporal.api.history.v1.IHistoryEvent;

/** ACTIVITY_TASK_SCHEDULED:waitForDiskSync, UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, … */
function label(e: Event, names: Map<string, string>): string {
  const key = Object.keys(e).find((k) => k.endsWith('EventAttributes') && e[k as keyof Event]) ?? 'unknown';
  const type = key
    .replace(/EventAttributes$/, '')
    .replace(/[A-Z]/g, (c) => `_${c}`)
    .toUpperCase();
  const s = e.activityTaskScheduledEventAttributes;
  if (s) names.set(String(e.eventId), s.activityType?.name ?? '?');
  const of = e.activityTaskStartedEventAttributes?.scheduledEventId ?? e.activityTaskCompletedEventAttributes?.scheduledEventId;
  const name = s?.activityType?.name ?? (of != null ? names.get(String(of)) : undefined);
  return name ? `${type}:${name}` : type;
}

async function migration(resyncMiB: number) {
  // 60 MiB/s of resync: 60 MiB is 1 s, 3600 MiB 60 s (1.2 s of real time at 50×).
  const { c } = await h.cluster({ sim: { timeFactor: 50, syncRate: 60, reconnectResync: resyncMiB } });
  const handle = await start(h.env(), c, { instance: 'web1' });
  expect((await operationResult(handle)).outcome).toBe('migrated');
  const events = (await handle.fetchHistory()).events ?? [];
  const names = new Map<string, string>();
  const labels = events.map((e) => label(e, names));
  return {
    total: events.length,
    rest: labels.filter((l) => !l.startsWith('WORKFLOW_TASK_')),
    workflowTasks: labels.filter((l) => l === 'WORKFLOW_TASK_SCHEDULED').length,
    completions: labels.filter((l) => l.startsWith('ACTIVITY_TASK_COMPLETED')).length,
    retries: events.filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1).length,
    syncWaits: labels.filter((l) => l === 'ACTIVITY_TASK_SCHEDULED:waitForDiskSync').length,
  };
}

describe('history size', () => {
  test('a DRBD live migration: the same commands and activity events with 1 s and with 60 s of resync', async () => {
    const short = await migration(60);
    const long = await migration(3600);
    // The same events of each kind (the order of two parallel RPCs' completions may differ).
    expect([...long.rest].sort()).toEqual([...short.rest].sort());
    expect(short.syncWaits).toBe(6); // three waits, on both nodes
    for (const r of [short, long]) {
      expect(r.rest.some((l) => l.startsWith('TIMER_'))).toBe(false);
      expect(r.retries).toBe(0);
      expect(r.workflowTasks).toBeLessThanOrEqual(r.completions + 1);
      expect(r.total).toBe(r.rest.length + 3 * r.workflowTasks);
    }
  }, 120_000);
});
