/**
 * TLS, client certificates and an API key end to end: the dev server behind a TLS-terminating gRPC
 * proxy (nginx, helpers/grpc-proxy.ts) that requires a client certificate and the API key. The
 * workers (`npm start` against an existing server) connect through it with a Temporal client
 * profile (TEMPORAL_CONFIG_FILE / TEMPORAL_PROFILE), the CLI with the TEMPORAL_* variables, the
 * typed client with the same settings; a migration runs through it. Unusable settings, a wrong CA,
 * a missing certificate, a wrong API key and a missing payload key each end the CLI with exit 5 and
 * their error type.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { operationResult } from '../../client/api.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { clusterDataConverter, connectClient, temporalSettings } from '../../connection/settings.js';
import { PROJECT_ROOT } from '../../worker/temporal-cli.js';
import { cli } from '../helpers/cli.js';
import { createTestCluster, type TestCluster } from '../helpers/cluster.js';
import { startGrpcProxy, type GrpcProxy } from '../helpers/grpc-proxy.js';
import { startServer } from '../helpers/temporal.js';

const API_KEY = 'test-api-key-3b8e';
let server: TestWorkflowEnvironment;
let proxy: GrpcProxy;
let cluster: TestCluster;
let workers: ChildProcess | undefined;
let scratch: string;

/** The environment without any Temporal connection variable of the test run itself. */
function cleanEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('TEMPORAL_')) out[k] = v;
  return { ...out, HOME: scratch, TEMPORAL_CLI: inject('temporalCli') };
}

/** The CLI's connection through the proxy, with the project's earlier TLS variable names. */
const cliEnv = (over: Record<string, string> = {}): Record<string, string> => ({
  GANETI_TEMPORAL_HOME: cluster.home,
  TEMPORAL_ADDRESS: proxy.address,
  TEMPORAL_NAMESPACE: 'default',
  TEMPORAL_API_KEY: API_KEY,
  TEMPORAL_TLS_CA: proxy.files.ca,
  TEMPORAL_TLS_CERT: proxy.files.clientCert,
  TEMPORAL_TLS_KEY: proxy.files.clientKey,
  TEMPORAL_TLS_SERVER_NAME: 'localhost',
  ...over,
});

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'ganeti-temporal-tls-'));
  server = await startServer();
  proxy = await startGrpcProxy(server.address, API_KEY);
  cluster = await createTestCluster({ sim: { timeFactor: 20 } });
  // The workers' connection: a profile of a Temporal client configuration file.
  const profile = join(scratch, 'temporal.toml');
  writeFileSync(
    profile,
    [
      '[profile.proxied]',
      `address = "${proxy.address}"`,
      'namespace = "default"',
      `api_key = "${API_KEY}"`,
      '[profile.proxied.tls]',
      `server_ca_cert_path = "${proxy.files.ca}"`,
      `client_cert_path = "${proxy.files.clientCert}"`,
      `client_key_path = "${proxy.files.clientKey}"`,
      'server_name = "localhost"',
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'worker/main.ts'), 'start'], {
    cwd: PROJECT_ROOT,
    env: { ...cleanEnv(), GANETI_TEMPORAL_HOME: cluster.home, TEMPORAL_CONFIG_FILE: profile, TEMPORAL_PROFILE: 'proxied' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  workers = child;
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`workers not ready after 60 s:\n${out}`)), 60_000);
    const check = setInterval(() => {
      if (out.includes('try: npm run --silent cli')) {
        clearTimeout(t);
        clearInterval(check);
        resolve();
      }
    }, 100);
    child.once('exit', (code) => {
      clearTimeout(t);
      clearInterval(check);
      reject(new Error(`workers exited with ${code}:\n${out}`));
    });
  });
  expect(out).toContain(`Temporal server: ${proxy.address}, namespace default`);
  expect(out).not.toContain('starting the embedded Temporal dev server');
}, 120_000);

afterAll(async () => {
  if (workers && workers.exitCode === null) {
    const exited = new Promise((r) => workers!.once('exit', r));
    workers.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (workers.exitCode === null) workers.kill('SIGKILL');
  }
  await proxy?.stop();
  await server?.teardown();
  cluster?.remove();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('a migration through the TLS proxy: workers by profile, the CLI by variables, the typed client by the same settings', async () => {
  const r = await cli(['instance', 'migrate', 'web1', '--json'], { ...cleanEnv(), ...cliEnv() });
  expect(r.code, r.stderr).toBe(0);
  expect(r.json()).toMatchObject({ outcome: 'migrated', instance: 'web1', sourceNode: 'node1', targetNode: 'node2' });
  expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, cluster.instance('web1'), cluster.status('web1'))).toEqual(
    [],
  );

  // The typed client, connected with the standard variable names.
  const settings = temporalSettings({
    ...cleanEnv(),
    TEMPORAL_ADDRESS: proxy.address,
    TEMPORAL_API_KEY: API_KEY,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: proxy.files.ca,
    TEMPORAL_TLS_CLIENT_CERT_PATH: proxy.files.clientCert,
    TEMPORAL_TLS_CLIENT_KEY_PATH: proxy.files.clientKey,
    TEMPORAL_TLS_SERVER_NAME: 'localhost',
  });
  const client = await connectClient(settings, { dataConverter: clusterDataConverter(cluster.home) });
  try {
    const result = await operationResult(client.workflow.getHandle('instance/web1'));
    expect(result).toMatchObject({ outcome: 'migrated', targetNode: 'node2' });
  } finally {
    await client.connection.close();
  }

  // Every call went through the proxy: starts, polls and completions answered 200.
  const log = proxy.accessLog();
  expect(log).toMatch(/^200 \/temporal\.api\.workflowservice\.v1\.WorkflowService\/StartWorkflowExecution$/m);
  expect(log).toMatch(/^200 \/temporal\.api\.workflowservice\.v1\.WorkflowService\/PollActivityTaskQueue$/m);
  expect(log).toMatch(/^200 \/temporal\.api\.workflowservice\.v1\.WorkflowService\/RespondWorkflowTaskCompleted$/m);
});

test('connection misconfiguration ends the CLI with exit 5 and its error type', async () => {
  const noKey = mkdtempSync(join(scratch, 'home-'));
  const cases: Array<[string, Record<string, string>, string, RegExp]> = [
    ['a wrong API key', { TEMPORAL_API_KEY: 'wrong' }, 'Unauthenticated', /refused the credentials/],
    ['no API key', { TEMPORAL_API_KEY: '', TEMPORAL_TLS: 'true' }, 'Unauthenticated', /refused the credentials/],
    [
      'a CA that did not sign the server certificate',
      { TEMPORAL_TLS_CA: proxy.files.otherCa },
      'Unreachable',
      /cannot reach the Temporal server/,
    ],
    ['no client certificate', { TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '' }, 'Unreachable', /cannot reach the Temporal server/],
    ['a certificate without its key', { TEMPORAL_TLS_KEY: '' }, 'ConnectionSettings', /a client certificate and its key go together/],
    ['a missing CA file', { TEMPORAL_TLS_CA: join(scratch, 'nosuch.pem') }, 'ConnectionSettings', /cannot read a TLS file .*nosuch\.pem/],
    ['an unknown profile', { TEMPORAL_PROFILE: 'nosuch' }, 'ConnectionSettings', /Profile 'nosuch' not found/],
    ['no payload key file', { GANETI_TEMPORAL_HOME: noKey }, 'PayloadKey', /no payload key file at/],
  ];
  for (const [what, over, type, message] of cases) {
    const r = await cli(['job', 'list', '--json'], { ...cleanEnv(), ...cliEnv(over) });
    expect(r.code, `${what}: ${r.stdout}${r.stderr}`).toBe(5);
    const err = (r.json() as { error: { type: string; message: string } }).error;
    expect(err.type, what).toBe(type);
    expect(err.message, what).toMatch(message);
  }
  expect(proxy.accessLog()).toMatch(/^401 \/temporal\.api\.workflowservice\.v1\.WorkflowService\/GetSystemInfo$/m);
});
