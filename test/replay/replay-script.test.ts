/**
 * `npm run replay` on a history exported the way an operator would (`temporal workflow show
 * --output json`): it replays, its encrypted payloads decoded with the key under
 * GANETI_TEMPORAL_HOME; without that key it cannot; a history whose commands no longer match the
 * code is reported.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, inject, test } from 'vitest';
import { operationResult } from '../../client/api.js';
import { PROJECT_ROOT } from '../../worker/temporal-cli.js';
import { start, useHarness } from '../helpers/harness.js';

const h = useHarness();

test('npm run replay: an exported history replays; a tampered one is reported', async () => {
  const { c } = await h.cluster();
  const handle = await start(h.env(), c, { instance: 'web1' });
  await operationResult(handle);
  const dir = mkdtempSync(join(tmpdir(), 'replay-'));
  try {
    const exported = execFileSync(
      inject('temporalCli'),
      ['workflow', 'show', '--workflow-id', handle.workflowId, '--output', 'json', '--address', h.env().address],
      { encoding: 'utf8' },
    );
    const good = join(dir, 'exported.json');
    writeFileSync(good, exported);
    // The same history with two activities' types exchanged: what the code would meet after a reorder.
    const tampered = join(dir, 'tampered.json');
    const text = readFileSync(good, 'utf8');
    const swapped = text
      .replace(/"name":\s*"migrationInfo"/, '"name": "__SWAP__"')
      .replace(/"name":\s*"blockdevClose"/, '"name": "migrationInfo"')
      .replace('"__SWAP__"', '"blockdevClose"');
    expect(swapped).not.toBe(text);
    writeFileSync(tampered, swapped);

    // The export holds encrypted payloads (the input, the results, the summaries; only the search
    // attributes are plain).
    type Exported = {
      events: Array<{ workflowExecutionStartedEventAttributes?: { input: { payloads: Array<{ metadata: Record<string, string> }> } } }>;
    };
    const input = (JSON.parse(text) as Exported).events[0]!.workflowExecutionStartedEventAttributes!.input.payloads[0]!;
    expect(Buffer.from(input.metadata.encoding!, 'base64').toString()).toBe('binary/encrypted');
    const replay = (files: string[], home = c.home) =>
      spawnSync('npx', ['tsx', 'scripts/replay.ts', ...files], {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        env: { ...process.env, GANETI_TEMPORAL_HOME: home },
      });

    const ok = replay([good]);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^OK\s+.*exported\.json \(migrateInstanceWorkflow, \d+ events\)$/m);

    const keyless = replay([good], dir);
    expect(keyless.status).toBe(1);
    expect(keyless.stderr).toContain(`note: no payload key file at ${join(dir, 'payload-keys.json')}`);
    expect(keyless.stdout).toMatch(/^FAILED\s+.*exported\.json/m);

    const bad = replay([good, tampered]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/^NONDETERMINISTIC\s+.*tampered\.json .*Activity type of scheduled event/m);
    expect(bad.stdout).toContain('1 of the histories do not replay against the current workflow code');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
