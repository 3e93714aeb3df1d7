/**
 * `npm run replay -- <history.json|directory>...`: replays histories — downloaded from the Web UI
 * ("Download" on the event history) or written by `temporal workflow show --output json` — against
 * the current workflow code, and prints a verdict per file. Exit status 1 if any does not replay.
 * Payloads are decoded with the cluster's payload codec (the key file under GANETI_TEMPORAL_HOME,
 * connection/codec.ts), as the workers decode them; histories recorded without encryption replay as
 * they are. The workflow code is the bundle the workers would run (worker/bundle.ts): the file
 * GANETI_TEMPORAL_WORKFLOW_BUNDLE names, the prebuilt dist/workflow-bundle.js when run compiled
 * (`node dist/scripts/replay.js`), else the sources bundled now — the upgrade gate of docs/deploy.md.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import type { DataConverter } from '@temporalio/common';
import { keyFilePath } from '../connection/codec.js';
import { clusterDataConverter, homeDir } from '../connection/settings.js';
import { workerWorkflowBundle } from '../worker/bundle.js';

/** The history files named, a directory's `.json` files at any depth (the corpus has one per workflow type). */
function files(args: string[]): string[] {
  return args.flatMap((a) =>
    statSync(a).isDirectory()
      ? readdirSync(a)
          .filter((f) => f !== 'MANIFEST.json' && (f.endsWith('.json') || statSync(join(a, f)).isDirectory()))
          .sort()
          .flatMap((f) => (f.endsWith('.json') ? [join(a, f)] : files([join(a, f)])))
      : [a],
  );
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (!args.length) {
    console.error('usage: npm run replay -- <history.json|directory>...');
    return 2;
  }
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  let dataConverter: DataConverter = {};
  if (existsSync(keyFilePath(homeDir()))) dataConverter = clusterDataConverter(homeDir());
  else
    console.error(
      `note: no payload key file at ${keyFilePath(homeDir())}: encrypted histories cannot be decoded (set GANETI_TEMPORAL_HOME)`,
    );
  // The bundle the workers would run: GANETI_TEMPORAL_WORKFLOW_BUNDLE, the build's prebuilt one, or built now.
  const todo = files(args);
  if (!todo.length) {
    console.error(`no history files (*.json) in ${args.join(' ')}`);
    return 2;
  }
  const bundle = await workerWorkflowBundle();
  let bad = 0;
  for (const file of todo) {
    let history;
    try {
      const raw = JSON.parse(readFileSync(file, 'utf8')) as { events?: unknown[] } | unknown[];
      history = historyFromJSON(Array.isArray(raw) ? { events: raw } : raw);
    } catch (e) {
      console.log(`UNREADABLE        ${file}: ${(e as Error).message}`);
      bad++;
      continue;
    }
    const type = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? '?';
    const n = history.events?.length ?? 0;
    try {
      await Worker.runReplayHistory({ workflowBundle: bundle, replayName: file, dataConverter }, history, file);
      console.log(`OK                ${file} (${type}, ${n} events)`);
    } catch (e) {
      bad++;
      const kind = e instanceof DeterminismViolationError ? 'NONDETERMINISTIC' : 'FAILED          ';
      console.log(`${kind}  ${file} (${type}, ${n} events): ${(e as Error).message.split('\n')[0]}`);
    }
  }
  console.log(bad ? `${bad} of the histories do not replay against the current workflow code` : 'all histories replay');
  return bad ? 1 : 0;
}

void main().then((code) => process.exit(code));
