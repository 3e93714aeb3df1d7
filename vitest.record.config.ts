import { defineConfig } from 'vitest/config';

/** `npm run histories:record`: the recorder only (sequential, one dev server). */
export default defineConfig({
  test: {
    include: ['test/histories/*.recording.ts'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup-runtime.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
