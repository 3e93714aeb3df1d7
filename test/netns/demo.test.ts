/**
 * `npm start -- --hosts netns` (worker/hosts-demo.ts) as a child process, as root: the default cluster
 * seeded with the hosts' addresses, each node agent a process inside its node's namespace reaching
 * the embedded dev server through the management network, a migration through them; Ctrl-C ends
 * the agents and removes the hosts. A cluster created without hosts is refused with a clear error.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterEach, expect, test } from 'vitest';
import { migrateInstance } from '../../client/api.js';
import { freePort } from '../../adapters/common/net.js';
import { instanceHwDetail } from '../../adapters/sim/cluster.js';
import { SimHardware } from '../../adapters/sim/hardware.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { openSqliteStore } from '../../adapters/store/open.js';
import { clusterDataConverter } from '../../connection/settings.js';
import { DEMO_HOSTS_ID } from '../../worker/hosts-demo.js';
import { interrupt, startStack } from '../helpers/processes.js';

const children: ChildProcess[] = [];
const homes: string[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) await interrupt(c, 20_000);
  for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
});

async function stackEnv(): Promise<Record<string, string>> {
  const home = mkdtempSync(join(tmpdir(), 'ganeti-temporal-hosts-'));
  homes.push(home);
  return {
    GANETI_TEMPORAL_HOME: home,
    GANETI_TEMPORAL_DEV_PORT: String(await freePort()),
    GANETI_TEMPORAL_UI_PORT: String(await freePort()),
    GANETI_TEMPORAL_CODEC_PORT: String(await freePort()),
    TEMPORAL_ADDRESS: '',
  };
}

const nsPath = (node: string) => `/run/netns/${DEMO_HOSTS_ID}-${node}`;

test('npm start -- --hosts netns: each agent in its host, a migration through them; Ctrl-C removes the hosts', async () => {
  const env = await stackEnv();
  const home = env.GANETI_TEMPORAL_HOME!;
  const agentsUp = (out: string) => ['node1', 'node2', 'node3'].every((n) => out.includes(`node agent for ${n} (sim)`));
  const stack = await startStack(env, ['--hosts', 'netns'], { ready: agentsUp, timeoutMs: 90_000, track: children });
  const cfg = openSqliteStore(home).readSync();
  expect(Object.values(cfg.nodes).map((n) => [n.name, n.primaryIp, n.secondaryIp])).toEqual([
    ['node1', '10.213.1.11', '10.213.2.11'],
    ['node2', '10.213.1.12', '10.213.2.12'],
    ['node3', '10.213.1.13', '10.213.2.13'],
  ]);
  // The agents reach the server over the management network, from inside their namespaces.
  expect(stack.output()).toContain(
    `node agent for node1 (sim) in cluster ${cfg.cluster.name} on 10.213.1.1:${env.GANETI_TEMPORAL_DEV_PORT}`,
  );
  for (const n of ['node1', 'node2', 'node3']) expect(existsSync(nsPath(n))).toBe(true);

  const connection = await Connection.connect({ address: `localhost:${env.GANETI_TEMPORAL_DEV_PORT}` });
  try {
    const client = new Client({ connection, dataConverter: clusterDataConverter(home) });
    const r = await migrateInstance(client, { instance: 'web1' }, { cluster: cfg.cluster.name });
    expect(r.outcome).toBe('migrated');
  } finally {
    await connection.close();
  }
  const { state, now } = SimHardware.forHome(home).read();
  const inst = openSqliteStore(home).readSync().instances.web1!;
  expect(inst.primaryNode).toBe('node2');
  expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, inst, instanceHwDetail(state, now, inst))).toEqual([]);

  await interrupt(stack.child, 20_000);
  for (const n of ['node1', 'node2', 'node3']) expect(existsSync(nsPath(n))).toBe(false);
});

test('npm start -- --hosts netns on a cluster created without hosts is refused and changes nothing', async () => {
  const env = await stackEnv();
  const local = await startStack(env, [], { track: children, timeoutMs: 90_000 });
  await interrupt(local.child, 20_000);
  await expect(startStack(env, ['--hosts', 'netns'], { ready: () => false, track: children })).rejects.toThrow(
    /was not created for --hosts netns \(secondary IPs of node1, node2, node3 are not on 10\.213\.2\.0\/24\); start with a fresh GANETI_TEMPORAL_HOME/,
  );
  for (const n of ['node1', 'node2', 'node3']) expect(existsSync(nsPath(n))).toBe(false);
  expect(openSqliteStore(env.GANETI_TEMPORAL_HOME!).readSync().nodes.node1!.secondaryIp).toBe('198.51.100.11');
});
