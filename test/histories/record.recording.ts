/**
 * `npm run histories:record`: runs every catalogue scenario on a real dev server over the simulated
 * cluster and writes its history to test/histories/<workflow>/<scenario>.json, plus MANIFEST.json.
 * HISTORIES_ONLY=a,b records only those scenarios (the manifest keeps the others' entries).
 * Recorded histories are never edited; see docs/versioning.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { afterAll, test } from 'vitest';
import { PROJECT_ROOT } from '../../worker/temporal-cli.js';
import { useServer } from '../helpers/temporal.js';
import { finish, scenarioContext, SCENARIOS } from './catalogue.js';
import { MANIFEST_PATH, historyPath, type Manifest, type ManifestEntry } from './manifest.js';

const only = process.env.HISTORIES_ONLY?.split(',').filter(Boolean);
const selected = only ? SCENARIOS.filter((s) => only.includes(s.name)) : SCENARIOS;

const server = useServer();
const entries: ManifestEntry[] = [];

function git(...args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** The code the workflow bundle is built from: workflows/ and the pure domain modules it imports. */
const WORKFLOW_CODE = ['workflows', 'domain'];
const commit = git('log', '-1', '--format=%H', '--', ...WORKFLOW_CODE);
const dirty = git('status', '--porcelain', '--', ...WORKFLOW_CODE) !== '';
const sdkVersion = (
  JSON.parse(readFileSync(join(PROJECT_ROOT, 'node_modules/@temporalio/worker/package.json'), 'utf8')) as { version: string }
).version;

/**
 * Failure stack traces name this machine's paths; replay ignores them (payloads carry none), so they
 * are written relative: the project root as <project>, the temporary directory as <tmp>.
 */
function normalise(json: string): string {
  return json.split(PROJECT_ROOT).join('<project>').split(tmpdir()).join('<tmp>');
}

afterAll(() => {
  const previous: Manifest = existsSync(MANIFEST_PATH) ? (JSON.parse(readFileSync(MANIFEST_PATH, 'utf8')) as Manifest) : { histories: [] };
  const byFile = new Map(previous.histories.map((h) => [h.file, h]));
  for (const e of entries) byFile.set(e.file, e);
  const manifest: Manifest = { histories: [...byFile.values()].sort((a, b) => a.file.localeCompare(b.file)) };
  writeFileSync(MANIFEST_PATH, `${JSON.stringify(manifest, null, 2)}\n`);
});

for (const s of selected) {
  test(`${s.workflow}/${s.name}: ${s.description}`, async () => {
    const handle = await s.run(scenarioContext(server, {}));
    await finish(s, handle);
    const file = historyPath(s);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${normalise(JSON.stringify(JSON.parse(historyToJSON(await handle.fetchHistory())), null, 1))}\n`);
    entries.push({
      file: file.slice(PROJECT_ROOT.length + 1),
      scenario: s.name,
      workflowType: s.workflow,
      workflowId: handle.workflowId,
      description: s.description,
      expect: s.expect,
      sdkVersion,
      commit,
      workflowCodeDirty: dirty,
      recordedAt: new Date().toISOString(),
    });
  });
}
