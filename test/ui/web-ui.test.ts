/**
 * The Temporal Web UI as the operator's console: headless Chromium (Debian's package, driven by
 * playwright-core; no browser download) opens a running migration's page and finds its summary, its
 * input and its current details (the live step checklist). Payloads are encrypted, as with `npm
 * start`: the UI reads them decoded through the project's codec endpoint. A screenshot is kept in
 * test-results/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { freePort } from '../../adapters/common/net.js';
import { operationResult, startMigration } from '../../client/api.js';
import { AesGcmCodec } from '../../connection/codec.js';
import { startCodecServer, type CodecServer } from '../../worker/codec-server.js';
import { uiCodecArgs } from '../../worker/dev-server.js';
import { PROJECT_ROOT } from '../../worker/temporal-cli.js';
import { createTestCluster, type TestCluster } from '../helpers/cluster.js';
import { testKeyRing } from '../helpers/codec.js';
import { waitForProgress } from '../helpers/harness.js';
import { ensureCommand } from '../helpers/system-packages.js';
import { startServer, Workers } from '../helpers/temporal.js';

/** The flags this machine's closed network needs (see the machine notes): no background fetches. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let env: TestWorkflowEnvironment;
let uiPort: number;
let browser: Browser;
let cluster: TestCluster;
let workers: Workers;
let codecServer: CodecServer;
/** Payloads the UI had decoded through the codec endpoint. */
let decodedByEndpoint = 0;

beforeAll(async () => {
  const executablePath = ensureCommand('chromium', 'chromium');
  uiPort = await freePort();
  const codec = new AesGcmCodec(testKeyRing());
  const counting = {
    encode: (p: Parameters<AesGcmCodec['encode']>[0]) => codec.encode(p),
    decode: async (p: Parameters<AesGcmCodec['decode']>[0]) => {
      decodedByEndpoint += p.length;
      return codec.decode(p);
    },
  };
  codecServer = await startCodecServer({ codec: counting, port: 0, allowedOrigins: [`http://localhost:${uiPort}`] });
  env = await startServer({ ui: true, uiPort, extraArgs: uiCodecArgs(codecServer.url) });
  cluster = await createTestCluster({ sim: { timeFactor: 1 } });
  workers = await new Workers(env, cluster).all();
  browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await workers?.stopAll();
  cluster?.remove();
  await env?.teardown();
  await codecServer?.close();
});

test('the Web UI page of a running, encrypted migration shows its summary, input and live step checklist, decoded', async () => {
  const handle = await startMigration(
    env.client,
    { instance: 'web1', reason: 'node1 maintenance' },
    { cluster: cluster.name, snapshot: cluster.cfg() },
  );
  await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
  // The server holds the input and the summary encrypted only.
  const started = (await handle.fetchHistory()).events![0]!;
  const enc = (p: { metadata?: Record<string, Uint8Array> | null } | null | undefined) =>
    Buffer.from(p?.metadata?.encoding ?? []).toString();
  expect(enc(started.workflowExecutionStartedEventAttributes!.input!.payloads![0])).toBe('binary/encrypted');
  expect(enc(started.userMetadata!.summary)).toBe('binary/encrypted');
  expect(enc(started.userMetadata!.details)).toBe('binary/encrypted');
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  const url = `http://localhost:${uiPort}/namespaces/default/workflows/${encodeURIComponent(handle.workflowId)}/${handle.firstExecutionRunId}/history`;
  await page.goto(url);
  await page.getByText('User Metadata', { exact: true }).click();
  // The UI renders each markdown block (summary, details, current details — the latter polled
  // through the workflow's metadata query) in its own sandboxed frame: read all frames.
  const text = async () =>
    (
      await Promise.all(
        page.frames().map((f) =>
          f
            .locator('body')
            .innerText()
            .catch(() => ''),
        ),
      )
    ).join('\n');
  let body = '';
  for (let i = 0; i < 60 && !(body.includes('Migrate web1: node1 → node2, live') && body.includes('Transfer the memory')); i++) {
    await page.waitForTimeout(500);
    body = await text();
  }
  expect(body).toContain('Migrate web1: node1 → node2, live');
  expect(body).toContain('Transfer the memory');
  expect(body).toContain('Current Details');
  expect(body).toMatch(/Phase:\s*memory-transfer/);
  expect(body).toContain('Prepare node2 to accept the instance');
  expect(body).toContain('* starting memory transfer');
  expect(body).toContain('Reason: node1 maintenance');
  const dir = join(PROJECT_ROOT, 'test-results');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, 'web-ui-migration.png'), fullPage: true });
  // The history page: the workflow's input in the Input card and the activities' results, decoded.
  await page.goto(url);
  let main = '';
  for (let i = 0; i < 60 && !/"reason":\s*"node1 maintenance"/.test(main); i++) {
    await page.waitForTimeout(500);
    main = await page.locator('body').innerText();
  }
  expect(main).toMatch(/Input\s*\S*\s*\{\s*"instance":\s*"web1",\s*"reason":\s*"node1 maintenance"\s*\}/);
  expect(main).toMatch(/Result\s*\{"port":\d+\}/); // accept_instance's answer
  expect(main).not.toContain('binary/encrypted');
  await page.screenshot({ path: join(dir, 'web-ui-decoded-input.png') });
  expect(decodedByEndpoint).toBeGreaterThan(0);
  await page.close();
  await handle.cancel(); // the operator's "Request Cancellation": abort + revert run
  await operationResult(handle).catch(() => undefined);
  expect(cluster.status('web1').runningOn).toEqual(['node1']);
});
