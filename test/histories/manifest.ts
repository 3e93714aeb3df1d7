/** Where recorded histories live and what the manifest says about each. */
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../worker/temporal-cli.js';
import type { Expectation, Scenario } from './catalogue.js';

export const HISTORIES_DIR = join(PROJECT_ROOT, 'test', 'histories');
export const MANIFEST_PATH = join(HISTORIES_DIR, 'MANIFEST.json');

export const historyPath = (s: Pick<Scenario, 'workflow' | 'name'>): string => join(HISTORIES_DIR, s.workflow, `${s.name}.json`);

export interface ManifestEntry {
  /** Relative to the project root. */
  file: string;
  scenario: string;
  workflowType: string;
  workflowId: string;
  description: string;
  expect: Expectation;
  /** @temporalio/worker version that recorded it. */
  sdkVersion: string;
  /** The last commit that changed the workflow code (workflows/ and domain/) when recorded. */
  commit: string;
  /** The workflow code had uncommitted changes when recorded. */
  workflowCodeDirty: boolean;
  recordedAt: string;
}

export interface Manifest {
  histories: ManifestEntry[];
}
