/**
 * The tests mutation testing runs (stryker.config.mjs): the part of the fast unit tier
 * (vitest.unit.config.ts) that tests the mutated code directly — test/unit/domain/, the
 * prerequisite checks, the invariants checker and the node-side input schemas (trust-boundary). The tier's other files exercise adapters, the CLI
 * or activities (the JSON store with its file locks and child processes, the simulated node daemon
 * on simulated time, ...): slower per run and not what is mutated.
 *
 * Cost: Stryker's vitest runner starts a fresh worker for every mutant run (so static mutants, which
 * it tests against every test, are re-evaluated), and that start costs about as much as the tests.
 * `isolate: false` lets one run's test files share that worker instead of starting one each, and
 * the small domain tests go first, so a run that Stryker stops at the first failing test (bail)
 * often never loads the larger files.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';
import unit from './vitest.unit.config.js';

class DomainTestsFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => (f.moduleId.includes('/test/unit/domain/') ? 0 : 1);
    return [...files].sort((a, b) => rank(a) - rank(b) || a.moduleId.localeCompare(b.moduleId));
  }
}

// Not mergeConfig: it would append this `include` to the unit tier's instead of replacing it.
export default defineConfig({
  test: {
    ...unit.test,
    include: [
      'test/unit/domain/**/*.test.ts',
      'test/unit/prereq.test.ts',
      'test/unit/invariants.test.ts',
      'test/unit/trust-boundary.test.ts',
    ],
    isolate: false,
    sequence: { sequencer: DomainTestsFirst },
  },
});
