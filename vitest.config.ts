import { defineConfig } from 'vitest/config';
import SummaryReporter from './test/summary-reporter.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup-runtime.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Server-backed tests share two cores with a dev server and QEMU guests: a failed test runs once
    // more, and the summary reporter names every test that passed only on its retry (flaky).
    retry: 1,
    pool: 'forks',
    maxWorkers: 2,
    fileParallelism: true,
    // Skipped, flaky and failed tests by name after the default summary; the JSON report feeds .ci/run's last line.
    reporters: ['default', new SummaryReporter(), ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
