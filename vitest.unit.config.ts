/**
 * The fast tier (`npm run test:unit`): the pure and in-process tests that need no Temporal server and
 * no QEMU — so no global setup resolving the Temporal CLI, bundling the workflows or installing QEMU.
 * Mutation testing (stryker.config.mjs) runs against this tier only.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/activities/**/*.test.ts'],
    testTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 2,
    fileParallelism: true,
  },
});
