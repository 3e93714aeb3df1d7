import { defineConfig } from 'vitest/config';
import SkippedTestsReporter from './test/skipped-reporter.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup-runtime.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 2,
    fileParallelism: true,
    // The skipped tests by name after the default summary; the JSON report feeds .ci/run's last line.
    reporters: ['default', new SkippedTestsReporter(), ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
