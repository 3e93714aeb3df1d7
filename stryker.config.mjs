// @ts-check
/**
 * Mutation testing of the pure domain (`npm run test:mutation`; docs/mutation-testing.md): every
 * module of domain/ and the invariants checker of the simulated cluster, against the fast unit tier
 * (vitest.unit.config.ts) only. scripts/mutation-gate.mjs then holds every module, not just the
 * total, to the 85 % threshold.
 *
 * TypeScript: our type checker is TypeScript 7 (package `typescript-native`), which has no JavaScript
 * API, and the `typescript` package in node_modules is 6.0, there only for eslint. So Stryker's
 * TypeScript steps are bypassed: no @stryker-mutator/typescript-checker (mutants that do not
 * type-check simply run and are killed or survive like any other), and `tsconfigFile` names a file
 * that does not exist, so the sandbox preprocessor skips rewriting tsconfig.json (it would load the
 * `typescript` package; our tsconfig has no `extends` or `references` to rewrite anyway). Vitest
 * transpiles without type checking, and `disableTypeChecks` (Stryker's default) adds `// @ts-nocheck`
 * to the instrumented files.
 *
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: ['domain/*.ts', 'adapters/sim/invariants.ts'],
  tsconfigFile: 'tsconfig.does-not-exist.json',
  checkers: [],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  // clear-text: Stryker's score table (the surviving mutants are in the HTML report, and the gate lists
  // those of a module below the threshold); json: what the gate reads.
  reporters: ['clear-text', 'progress', 'json', 'html'],
  clearTextReporter: { allowColor: false, reportMutants: false, reportTests: false },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  thresholds: { high: 95, low: 85, break: 85 },
  ignorePatterns: ['.data', '.tools', 'test-results', 'reports', 'bench', '.ci'],
  tempDirName: '.stryker-tmp',
  timeoutMS: 10_000,
  // Local reruns test only the mutants whose code or covering tests changed; CI starts clean.
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
};
