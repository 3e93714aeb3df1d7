/**
 * The Temporal Web UI as the operator's console: headless Chromium (Debian's package, driven by
 * playwright-core; no browser download) opens a running migration's page and finds its summary and
 * its current details (the live step checklist). A screenshot is kept in test-results/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { freePort } from '../../adapters/common/net.js';
import { operationResult, startMigration } from '../../client/api.js';
import { PROJECT_ROOT } from '../../worker/temporal-cli.js';
import { createTestCluster, type TestCluster } from '../helpers/cluster.js';
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

beforeAll(async () => {
  const executablePath = ensureCommand('chromium', 'chromium');
  uiPort = await freePort();
  env = await startServer({ ui: true, uiPort });
  cluster = await createTestCluster({ sim: { timeFactor: 1 } });
  workers = await new Workers(env, cluster).all();
  browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await workers?.stopAll();
  cluster?.remove();
  await env?.teardown();
});

test('the Web UI page of a running migration shows its summary and its live step checklist', async () => {
  const handle = await startMigration(
    env.client,
    { instance: 'web1', reason: 'node1 maintenance' },
    { cluster: cluster.name, snapshot: cluster.cfg() },
  );
  await waitForProgress(handle, (p) => p.phase === 'memory-transfer');
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
  await page.close();
  await handle.cancel(); // the operator's "Request Cancellation": abort + revert run
  await operationResult(handle).catch(() => undefined);
  expect(cluster.status('web1').runningOn).toEqual(['node1']);
});
