/**
 * The tests mutation testing runs (stryker.config.mjs): the fast unit tier (vitest.unit.config.ts)
 * less the files that exercise adapters rather than the domain — the JSON store (file locks, child
 * processes) and the simulated node daemon (simulated time) — and the activity tests. The domain is
 * tested directly by the pure tests (test/unit/domain/, prereq, invariants).
 *
 * Cost: Stryker's vitest runner starts a fresh worker for every mutant run (so static mutants, which
 * it tests against every test, are re-evaluated), and that start costs about as much as the tests.
 * `isolate: false` lets one run's test files share that worker instead of starting one each, and
 * the small domain tests go first, so a run that Stryker stops at the first failing test (bail)
 * often never loads the larger files.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig, mergeConfig } from 'vitest/config';
import unit from './vitest.unit.config.js';

class DomainTestsFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => (f.moduleId.includes('/test/unit/domain/') ? 0 : 1);
    return [...files].sort((a, b) => rank(a) - rank(b) || a.moduleId.localeCompare(b.moduleId));
  }
}

export default mergeConfig(
  unit,
  defineConfig({
    test: {
      isolate: false,
      sequence: { sequencer: DomainTestsFirst },
      exclude: ['test/unit/store.test.ts', 'test/unit/sim-node.test.ts', 'test/activities/**', '**/node_modules/**'],
    },
  }),
);
