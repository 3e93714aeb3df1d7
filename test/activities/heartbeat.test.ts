/**
 * The node agents' heartbeat interceptor (worker/heartbeat.ts): every node activity heartbeats while
 * it runs, except the long waits, which heartbeat their own progress and liveness.
 */
import { Context } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { expect, test } from 'vitest';
import { SELF_HEARTBEATING } from '../../activities/index.js';
import { heartbeatInterceptor, heartbeatInterval } from '../../worker/heartbeat.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function env(activityType: string, heartbeatTimeoutMs: number | undefined) {
  const info = { activityType, ...(heartbeatTimeoutMs ? { heartbeatTimeoutMs } : {}) };
  const e = new MockActivityEnvironment(info, { interceptors: [heartbeatInterceptor(SELF_HEARTBEATING)] });
  const beats: unknown[] = [];
  e.on('heartbeat', (d: unknown) => beats.push(d));
  return { e, beats };
}

test('the interval is a third of the heartbeat timeout, never below 100 ms', () => {
  expect(heartbeatInterval(15_000)).toBe(5000);
  expect(heartbeatInterval(150)).toBe(100);
});

test('an RPC heartbeats every third of its heartbeat timeout while it runs, and stops with it', async () => {
  const { e, beats } = env('drbdAttachNet', 300);
  const r = await e.run(async () => {
    await sleep(450);
    return 'done';
  });
  expect(r).toBe('done');
  expect(beats.length).toBeGreaterThanOrEqual(3);
  expect(beats.length).toBeLessThanOrEqual(5);
  expect(beats.every((b) => b === undefined)).toBe(true);
  const after = beats.length;
  await sleep(250);
  expect(beats.length).toBe(after);
});

test('an activity without a heartbeat timeout is left alone', async () => {
  const { e, beats } = env('drbdAttachNet', undefined);
  await e.run(() => sleep(250));
  expect(beats).toEqual([]);
});

test('a long wait keeps its own heartbeats: its details are never overwritten, and a silent wait stays silent', async () => {
  for (const wait of SELF_HEARTBEATING) {
    const { e, beats } = env(wait, 300);
    await e.run(async () => {
      Context.current().heartbeat({ percent: 10 });
      await sleep(450); // a hung status poll: no heartbeat, so the wait's heartbeat can time out
    });
    expect(beats).toEqual([{ percent: 10 }]);
  }
});
