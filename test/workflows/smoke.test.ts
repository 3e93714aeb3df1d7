import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { migrateInstance } from '../../client/api.js';
import { checkInvariants } from '../../cluster/invariants.js';
import { createTestCluster } from '../helpers/cluster.js';
import { startServer, Workers } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await startServer();
});
afterAll(async () => {
  await env?.teardown();
});

test('live-migrates a DRBD instance to its secondary', async () => {
  const c = await createTestCluster();
  const w = await new Workers(env, c).all();
  try {
    const r = await migrateInstance(env.client, { instance: 'web1' }, { cluster: c.name });
    console.log(r.feedback.join('\n'));
    console.log(c.calls('web1').join('\n'));
    expect(r.outcome).toBe('migrated');
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  } finally {
    await w.stopAll();
  }
});
