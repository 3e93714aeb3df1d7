/**
 * The recorded histories (test/histories/) replayed against the current workflow code on every test
 * run: every catalogue scenario must have one, every one must replay, and a workflow with two steps
 * swapped must be rejected as nondeterministic. They are replayed with the payload codec, as the
 * workers and `npm run replay` decode: the corpus was recorded without encryption, so its payloads
 * pass through the codec unchanged.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { describe, expect, test } from 'vitest';
import { PROJECT_ROOT } from '../../worker/temporal-cli.js';
import { WORKFLOWS_PATH } from '../../worker/bundle.js';
import { SCENARIOS } from '../histories/catalogue.js';
import { HISTORIES_DIR, historyPath, MANIFEST_PATH, type Manifest } from '../histories/manifest.js';
import { testDataConverter } from '../helpers/codec.js';
import { testBundle } from '../helpers/temporal.js';

const manifest = JSON.parse(readFileSync(MANIFEST_PATH, 'utf8')) as Manifest;
const load = (file: string): unknown => JSON.parse(readFileSync(join(PROJECT_ROOT, file), 'utf8'));

describe('the recorded corpus', () => {
  test('every catalogue scenario has a recorded history', () => {
    const missing = SCENARIOS.filter((s) => !existsSync(historyPath(s))).map((s) => `${s.workflow}/${s.name}`);
    expect(missing, 'run `npm run histories:record` (HISTORIES_ONLY=<names> for just these)').toEqual([]);
  });

  test('the manifest lists exactly the history files, each with its scenario, SDK version and commit', () => {
    const onDisk = readdirSync(HISTORIES_DIR, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .flatMap((d) => readdirSync(join(HISTORIES_DIR, d.name)).map((f) => `test/histories/${d.name}/${f}`))
      .sort();
    expect(manifest.histories.map((h) => h.file).sort()).toEqual(onDisk);
    for (const h of manifest.histories) {
      expect(h).toMatchObject({
        scenario: expect.any(String),
        workflowType: expect.stringMatching(/^((migrate|failover|start|shutdown)InstanceWorkflow|node(Migrate|Failover)Workflow)$/),
      });
      expect(h.sdkVersion).toMatch(/^\d+\.\d+\.\d+$/);
      expect(h.commit).toMatch(/^[0-9a-f]{40}$/);
    }
  });

  test('the corpus is recorded without encryption (its payloads pass through the codec)', () => {
    const encrypted = Buffer.from('binary/encrypted').toString('base64');
    const files = manifest.histories.filter((h) => readFileSync(join(PROJECT_ROOT, h.file), 'utf8').includes(encrypted));
    expect(files).toEqual([]);
  });

  test('every recorded history replays against the current workflow code', async () => {
    async function* histories() {
      for (const h of manifest.histories) yield { workflowId: h.file, history: load(h.file) };
    }
    const failures: string[] = [];
    let replayed = 0;
    const options = { workflowBundle: testBundle(), replayName: 'corpus', dataConverter: testDataConverter() };
    for await (const r of Worker.runReplayHistories(options, histories())) {
      replayed++;
      if (r.error) failures.push(`${r.workflowId}: ${r.error.name}: ${r.error.message.split('\n')[0]}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(manifest.histories.length);
  });
});

describe('the guard works', () => {
  test('a migrate workflow with two steps swapped is rejected with DeterminismViolationError on the live-migration history', async () => {
    const loader = fileURLToPath(new URL('./swap-steps-loader.cjs', import.meta.url));
    const { code } = await bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      webpackConfigHook: (config) => {
        config.module ??= {};
        config.module.rules = [...(config.module.rules ?? []), { test: /migration\.ts$/, enforce: 'pre', use: [{ loader }] }];
        return config;
      },
      logger: {
        trace: () => undefined,
        debug: () => undefined,
        info: () => undefined,
        warn: () => undefined,
        error: console.error,
        log: () => undefined,
      },
    });
    const history = load('test/histories/migrateInstanceWorkflow/live-drbd.json');
    const err = await Worker.runReplayHistory(
      { workflowBundle: { code }, replayName: 'swapped', dataConverter: testDataConverter() },
      history,
    ).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DeterminismViolationError);
    expect((err as Error).message).toMatch(
      /Activity type of scheduled event 'migrationInfo' does not match activity type of activity command 'blockdevClose'/,
    );
  });
});
