/**
 * `npm start` itself (worker/main.ts start) as a child process: the embedded dev server with its
 * persistent SQLite file, Web UI (with the codec endpoint) and search attributes, the default
 * cluster and the payload key file created on first run (and not overwritten on the next),
 * orchestrator and node agents answering; and with TEMPORAL_ADDRESS set, no server started, a
 * config.json of the earlier JSON store imported into the new configuration database.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterEach, expect, test } from 'vitest';
import { migrateInstance } from '../../client/api.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { configPath } from '../../adapters/store/config-store.js';
import { openSqliteStore } from '../../adapters/store/open.js';
import { defaultClusterConfig } from '../../adapters/sim/cluster.js';
import { SimHardware } from '../../adapters/sim/hardware.js';
import { instanceHwDetail } from '../../adapters/sim/cluster.js';
import { SEARCH_ATTRIBUTES } from '../../workflows/messages.js';
import { freePort } from '../../adapters/common/net.js';
import { keyFilePath, readKeyFile } from '../../connection/codec.js';
import { clusterDataConverter } from '../../connection/settings.js';
import { interrupt, startStack } from '../helpers/processes.js';
import { startServer } from '../helpers/temporal.js';

const children: ChildProcess[] = [];
const homes: string[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) await interrupt(c);
  for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
});

const encoding = (p: { metadata?: Record<string, Uint8Array> | null } | null | undefined) =>
  Buffer.from(p?.metadata?.encoding ?? []).toString();

test('npm start: embedded dev server with persistent SQLite, Web UI, search attributes, default cluster and workers', async () => {
  const home = mkdtempSync(join(tmpdir(), 'ganeti-temporal-start-'));
  homes.push(home);
  const [port, uiPort, codecPort] = [await freePort(), await freePort(), await freePort()];
  const env = {
    GANETI_TEMPORAL_HOME: home,
    GANETI_TEMPORAL_DEV_PORT: String(port),
    GANETI_TEMPORAL_UI_PORT: String(uiPort),
    GANETI_TEMPORAL_CODEC_PORT: String(codecPort),
    TEMPORAL_ADDRESS: '',
  };
  const first = await startStack(env, [], { track: children });
  expect(first.output()).toContain(`created the default simulated cluster in ${home}`);
  expect(first.output()).toContain(`created the payload encryption key file ${keyFilePath(home)} (mode 0600)`);
  expect(statSync(keyFilePath(home)).mode & 0o777).toBe(0o600);
  expect(first.output()).toContain(`Temporal Web UI: http://localhost:${uiPort}/namespaces/default/workflows`);
  expect(first.output()).toContain(`codec endpoint: http://127.0.0.1:${codecPort}`);
  expect(existsSync(join(home, 'temporal', 'dev-server.db'))).toBe(true);
  expect((await fetch(`http://localhost:${uiPort}/`)).status).toBe(200);
  // The Web UI is configured with the codec endpoint.
  const ui = (await (await fetch(`http://localhost:${uiPort}/api/v1/settings`)).json()) as { Codec?: { Endpoint?: string } };
  expect(ui.Codec?.Endpoint).toBe(`http://127.0.0.1:${codecPort}`);

  const connection = await Connection.connect({ address: `localhost:${port}` });
  try {
    const sas = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    for (const k of SEARCH_ATTRIBUTES) expect(Object.keys(sas.customAttributes ?? {})).toContain(k.name);
    const client = new Client({ connection, dataConverter: clusterDataConverter(home) });
    const cfg = openSqliteStore(home).readSync();
    expect(Object.keys(cfg.nodes)).toEqual(['node1', 'node2', 'node3']);
    const r = await migrateInstance(client, { instance: 'web1' }, { cluster: cfg.cluster.name });
    expect(r.outcome).toBe('migrated');
    // What the server stores is encrypted with the cluster's key.
    const history = await client.workflow.getHandle('instance/web1').fetchHistory();
    const started = history.events![0]!.workflowExecutionStartedEventAttributes!;
    expect(encoding(started.input?.payloads?.[0])).toBe('binary/encrypted');
    expect(Buffer.from(started.input!.payloads![0]!.metadata!['encryption-key-id']!).toString()).toBe(
      readKeyFile(keyFilePath(home)).current,
    );
    const { state, now } = SimHardware.forHome(home).read();
    const inst = openSqliteStore(home).readSync().instances.web1!;
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, inst, instanceHwDetail(state, now, inst))).toEqual([]);
  } finally {
    await connection.close();
  }

  // A key file others may read is refused.
  await interrupt(first.child);
  chmodSync(keyFilePath(home), 0o644);
  await expect(startStack(env, [], { track: children })).rejects.toThrow(
    `it must be readable by its owner only: chmod 600 ${keyFilePath(home)}`,
  );
  chmodSync(keyFilePath(home), 0o600);

  // Restarted on the same data directory: the cluster, its key and the server's history are still there.
  const second = await startStack(env, [], { track: children });
  expect(second.output()).not.toContain('created the default simulated cluster');
  expect(openSqliteStore(home).readSync().instances.web1!.primaryNode).toBe('node2');
  expect(second.output()).not.toContain('created the payload encryption key file');
  const again = await Connection.connect({ address: `localhost:${port}` });
  try {
    const d = await new Client({ connection: again }).workflow.getHandle('instance/web1').describe();
    expect(d.status.name).toBe('COMPLETED');
  } finally {
    await again.close();
  }
});

test('npm start with TEMPORAL_ADDRESS starts no server and runs the workers against it; metrics and JSON logs', async () => {
  const server = await startServer();
  const home = mkdtempSync(join(tmpdir(), 'ganeti-temporal-start-'));
  homes.push(home);
  try {
    // A config.json of the JSON store of earlier versions: imported into the new database, kept renamed.
    const legacy = defaultClusterConfig('fromjson');
    legacy.instances.web3!.adminState = 'down';
    writeFileSync(configPath(home), JSON.stringify(legacy, null, 1));
    const metricsPort = await freePort();
    const stack = await startStack(
      { GANETI_TEMPORAL_HOME: home, TEMPORAL_ADDRESS: server.address },
      ['--metrics', `127.0.0.1:${metricsPort}`, '--log-format', 'json', '--log-level', 'INFO'],
      { track: children },
    );
    expect(stack.output()).not.toContain('starting the embedded Temporal dev server');
    expect(stack.output()).toContain(`Prometheus metrics on http://127.0.0.1:${metricsPort}/metrics`);
    expect(stack.output()).toContain(`Temporal server: ${server.address}, namespace default`);
    expect(stack.output()).not.toContain('codec endpoint');
    expect(stack.output()).toContain(`imported ${configPath(home)} into the configuration database`);
    expect(stack.output()).not.toContain('created the default simulated cluster');
    expect(stack.output()).toContain('created the simulated hardware of cluster fromjson');
    expect(existsSync(configPath(home))).toBe(false);
    expect(readdirSync(home).filter((f) => f.startsWith('config.json.imported-'))).toHaveLength(1);
    expect(statSync(join(home, 'config.db')).mode & 0o777).toBe(0o600);
    const cfg = openSqliteStore(home).readSync();
    expect(cfg).toEqual(legacy);
    const client = new Client({ connection: server.connection, dataConverter: clusterDataConverter(home) });
    const r = await migrateInstance(client, { instance: 'files1', targetNode: 'node1' }, { cluster: cfg.cluster.name });
    expect(r.outcome).toBe('migrated');
    expect(openSqliteStore(home).readSync().instances.files1!.primaryNode).toBe('node1');
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^temporal_activity_execution_latency/m);
    expect(metrics).toMatch(/^temporal_workflow_completed\{/m);
    const json = stack
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { time: string; level: string; message: string });
    expect(json.length).toBeGreaterThan(0);
    expect(json.find((l) => l.message === 'Worker state changed')).toMatchObject({
      level: 'INFO',
      taskQueue: expect.stringContaining('ganeti.'),
    });
    await interrupt(stack.child);
  } finally {
    await server.teardown();
  }
});
