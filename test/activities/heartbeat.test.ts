/**
 * The node agents' heartbeat interceptor (worker/heartbeat.ts): every node activity heartbeats while
 * it runs, and activities that heartbeat their own progress keep their details.
 */
import { Context } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { expect, test } from 'vitest';
import { heartbeatInterceptor, heartbeatInterval } from '../../worker/heartbeat.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function env(heartbeatTimeoutMs: number | undefined, heartbeatDetails?: unknown) {
  const info = { heartbeatDetails, ...(heartbeatTimeoutMs ? { heartbeatTimeoutMs } : {}) };
  const e = new MockActivityEnvironment(info, { interceptors: [heartbeatInterceptor] });
  const beats: unknown[] = [];
  e.on('heartbeat', (d: unknown) => beats.push(d));
  return { e, beats };
}

test('the interval is a third of the heartbeat timeout, never below 100 ms', () => {
  expect(heartbeatInterval(15_000)).toBe(5000);
  expect(heartbeatInterval(150)).toBe(100);
});

test('an RPC that never heartbeats itself heartbeats every third of its timeout while it runs', async () => {
  const { e, beats } = env(300);
  const r = await e.run(async () => {
    await sleep(450);
    return 'done';
  });
  expect(r).toBe('done');
  expect(beats.length).toBeGreaterThanOrEqual(3);
  expect(beats.length).toBeLessThanOrEqual(5);
  const after = beats.length;
  await sleep(250);
  expect(beats.length).toBe(after); // stops with the activity
});

test('an activity without a heartbeat timeout is left alone', async () => {
  const { e, beats } = env(undefined);
  await e.run(() => sleep(250));
  expect(beats).toEqual([]);
});

test('a wait that heartbeats its progress keeps its details: gaps are filled with its last details', async () => {
  const { e, beats } = env(300);
  await e.run(async () => {
    Context.current().heartbeat({ percent: 10 });
    await sleep(50);
    Context.current().heartbeat({ percent: 20 });
    await sleep(400); // silent: the interceptor fills in
  });
  expect(beats[0]).toEqual({ percent: 10 });
  expect(beats[1]).toEqual({ percent: 20 });
  expect(beats.length).toBeGreaterThanOrEqual(4);
  expect(beats.slice(2).every((b) => JSON.stringify(b) === JSON.stringify({ percent: 20 }))).toBe(true);
});

test('a retried wait keeps the previous attempt’s details until it heartbeats itself', async () => {
  const prev = { percent: 42 };
  const { e, beats } = env(300, prev);
  await e.run(() => sleep(250));
  expect(beats.length).toBeGreaterThanOrEqual(2);
  expect(beats.every((b) => JSON.stringify(b) === JSON.stringify(prev))).toBe(true);
});

test('a wait that heartbeats often enough is not interleaved with extra heartbeats', async () => {
  const { e, beats } = env(900);
  await e.run(async () => {
    for (let i = 0; i < 10; i++) {
      Context.current().heartbeat({ i });
      await sleep(40);
    }
  });
  expect(beats).toEqual(Array.from({ length: 10 }, (_, i) => ({ i })));
});
