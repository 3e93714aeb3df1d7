/**
 * Several orchestrators on one configuration database (issue 12): two orchestrator processes and ten
 * node agents, each its own OS process (chaos/procs.ts), share one real PostgreSQL server (Debian's
 * package, test/helpers/postgres.ts) through GANETI_TEMPORAL_DATABASE_URL. Both poll the same task
 * queue, so the operations of one burst are spread over both.
 * - 100 concurrent live migrations all complete: every instance ends on its former secondary, the
 *   serial grew by exactly one commit per migration (no lost update), no reservation is left, and the
 *   migration invariants hold for every instance.
 * - Concurrent migrations towards one node with room for only a few: the reservations taken across
 *   both orchestrators never overcommit it; the refused migrations change nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { operationResult, startMigration } from '../../client/api.js';
import { CRASH_TIMING } from '../../chaos/cluster.js';
import { Stack } from '../../chaos/procs.js';
import { buildHardware, instanceHwDetail } from '../../adapters/sim/cluster.js';
import { evacuationClusterConfig, evacuationInstanceName } from '../../adapters/sim/evacuation.js';
import { SimHardware } from '../../adapters/sim/hardware.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { DATABASE_URL_ENV, openConfigStore } from '../../adapters/store/open.js';
import type { SqlConfigStore } from '../../adapters/store/sql-store.js';
import type { ClusterConfig } from '../../domain/types.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';

const NODES = 10;
const N = 100;
const MEMORY = 256;
const DOM0 = 1024;

let pg: PostgresServer | undefined;
let home = '';
let stack: Stack | undefined;
let client: Client;
let store: SqlConfigStore;
let hw: SimHardware;
let initial: ClusterConfig;

beforeAll(async () => {
  pg = await startPostgres();
  const url = await pg.createDatabase();
  home = mkdtempSync(join(tmpdir(), 'gt-two-orchestrators-'));
  initial = evacuationClusterConfig('twoorch', {
    nodes: NODES,
    instances: N,
    memory: MEMORY,
    // every node's own ten instances plus the ten whose secondary it is, and room to spare
    nodeMemory: DOM0 + 2 * (N / NODES) * MEMORY + 1024,
    spread: true,
  });
  initial.cluster.timing = CRASH_TIMING;
  store = openConfigStore(home, {}, { [DATABASE_URL_ENV]: url });
  await store.initialise(initial);
  hw = SimHardware.forHome(home);
  // DRBD's wait for the peer to connect: 500 simulated s = 50 s here (Ganeti's 120 s would be 12 s,
  // which a peer agent starved of CPU by 100 concurrent migrations on two cores can miss), under the
  // 60 s 'normal' RPC timeout of CRASH_TIMING.
  await hw.replace(buildHardware(initial, { timeFactor: 10, dom0Memory: DOM0, reconnectTimeoutSec: 500 }));
  stack = new Stack({
    home,
    temporalCli: inject('temporalCli'),
    workflowBundlePath: inject('workflowBundlePath'),
    env: { [DATABASE_URL_ENV]: url },
  });
  await stack.startAll(Object.keys(initial.nodes));
  await stack.startOrchestrator(); // the second orchestrator, on the same database and task queue
  client = await stack.connect();
}, 300_000);

afterAll(async () => {
  await stack?.killAll();
  await store?.close();
  hw?.close();
  await pg?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
}, 120_000);

/** Which orchestrator process ran each workflow (the identity of its first workflow task). */
async function orchestratorsOf(workflowIds: string[]): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const id of workflowIds) {
    const h = await client.workflow.getHandle(id).fetchHistory();
    const started = h.events?.find((e) => e.workflowTaskStartedEventAttributes)?.workflowTaskStartedEventAttributes;
    if (started?.identity) ids.add(started.identity.replace(/@.*\//, '@'));
  }
  return ids;
}

test('100 concurrent migrations through two orchestrators: all complete, no lost update, no reservation left', async () => {
  const serial0 = (await store.config()).serial;
  const names = Array.from({ length: N }, (_, i) => evacuationInstanceName(i + 1));
  const handles = await Promise.all(names.map((instance) => startMigration(client, { instance }, { cluster: 'twoorch' })));
  const results = await Promise.allSettled(handles.map((h) => operationResult(h)));
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${names[i]}: ${String(r.reason)}`] : []));
  expect(failed).toEqual([]);

  const cfg = await store.config();
  for (const n of names) expect(cfg.instances[n]!.primaryNode, n).toBe(initial.instances[n]!.disks[0]!.drbd!.nodes[1]);
  // One compare-and-set of the primary per migration, each bumping the serial once: none lost.
  expect(cfg.serial - serial0).toBe(N);
  expect(cfg.reservations).toEqual({});
  const { state, now } = hw.read();
  const violations = names.flatMap((n) =>
    checkInvariants(
      { kind: 'migrated', source: initial.instances[n]!.primaryNode, target: cfg.instances[n]!.primaryNode },
      cfg.instances[n]!,
      instanceHwDetail(state, now, cfg.instances[n]!),
    ).map((v) => `${n}: ${v}`),
  );
  expect(violations).toEqual([]);
  // Both orchestrators took part.
  expect((await orchestratorsOf(handles.map((h) => h.workflowId))).size).toBe(2);
}, 600_000);

test('migrations towards a node with room for a few: reservations across both orchestrators never overcommit it', async () => {
  // The instances whose secondary is now node1 (they were migrated away from it above) go back at once.
  const cfg0 = await store.config();
  const back = Object.values(cfg0.instances)
    .filter((i) => i.disks[0]!.drbd!.nodes.includes('node1') && i.primaryNode !== 'node1')
    .map((i) => i.name)
    .sort();
  expect(back.length).toBeGreaterThanOrEqual(10);
  // node1 keeps what runs on it and has room for two more of these guests.
  const room = 2 * MEMORY;
  await hw.mutate((s) => {
    const used = Object.values(s.nodes.node1!.processes).reduce((a, p) => a + p.memory, 0);
    s.nodes.node1!.memoryTotal = DOM0 + used + room;
  });
  const serial0 = cfg0.serial;
  const handles = await Promise.all(back.map((instance) => startMigration(client, { instance }, { cluster: 'twoorch' })));
  const results = await Promise.allSettled(handles.map((h) => operationResult(h)));
  const moved = back.filter((_, i) => results[i]!.status === 'fulfilled');
  const refused = back.filter((_, i) => results[i]!.status === 'rejected');

  const cfg = await store.config();
  const { state } = hw.read();
  const node1 = state.nodes.node1!;
  const used = Object.values(node1.processes).reduce((a, p) => a + p.memory, 0);
  expect(used).toBeLessThanOrEqual(node1.memoryTotal - DOM0);
  expect(moved.length).toBeGreaterThanOrEqual(1);
  expect(refused.length).toBeGreaterThanOrEqual(back.length - 4); // at most room / minmem fit
  for (const n of moved) expect(cfg.instances[n]!.primaryNode).toBe('node1');
  for (const n of refused) {
    expect(cfg.instances[n]!.primaryNode).toBe(cfg0.instances[n]!.primaryNode);
    expect(Object.keys(node1.processes)).not.toContain(n);
  }
  for (const [i, r] of results.entries()) {
    if (r.status === 'rejected') expect(String(r.reason), back[i]).toMatch(/memory/i);
  }
  expect(cfg.serial - serial0).toBe(moved.length);
  expect(cfg.reservations).toEqual({});
}, 600_000);
