// Lint: typescript-eslint's recommended rules, the promise rules that matter for Temporal code, and
// import restrictions that encode the layering (docs/architecture.md):
//   domain/      pure: imports nothing of Temporal, no Node I/O, no other layer
//   workflows/   only @temporalio/workflow, the domain and activity *types*
//   activities/  the domain (ports) and the activity SDK; never an adapter
//   adapters/X/  the domain and adapters/common; never another adapter or an upper layer
//   client/ and worker/ never import each other; both use connection/
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const restrict = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });
const NODE_IO = {
  regex: '^(node:)?(fs|fs/promises|child_process|net|os|path|http|https|dgram|worker_threads|process|timers|timers/promises|url|crypto)$',
};

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'dist/**',
      'dist.tmp-*/**',
      '.data/**',
      '.tools/**',
      'test-results/**',
      'reports/**',
      '.stryker-tmp/**',
      'test/histories/**/*.json',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', '*.mjs', 'bin/*.mjs', 'scripts/*.mjs', 'test/replay/*.cjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { process: 'readonly', console: 'readonly', require: 'readonly', module: 'writable', URL: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['domain/**/*.ts'],
    rules: restrict(
      { regex: '^@temporalio/', message: 'the domain is pure: no Temporal imports' },
      { ...NODE_IO, message: 'the domain is pure: no Node I/O' },
      { regex: '^\\.\\./', message: 'the domain imports only itself (and zod)' },
    ),
  },
  {
    files: ['workflows/**/*.ts'],
    rules: restrict(
      {
        regex: '^(?!\\.|@temporalio/workflow$|@temporalio/common$)',
        message: 'workflows import only @temporalio/workflow, the domain and activity types',
      },
      {
        regex: '^@temporalio/common$',
        allowTypeImports: true,
        message: 'workflows take values from @temporalio/workflow (types from common are fine)',
      },
      { regex: '^\\.\\./(?!domain/|activities/)', message: 'workflows import only @temporalio/workflow, the domain and activity types' },
      { regex: '^\\.\\./activities/', allowTypeImports: true, message: 'workflows import activity types only' },
    ),
  },
  {
    files: ['activities/**/*.ts'],
    rules: restrict({
      regex: '^\\.\\./(?!domain/)',
      message: 'activities depend on the domain ports, never on an adapter or an upper layer',
    }),
  },
  {
    files: ['adapters/**/*.ts'],
    rules: restrict(
      { regex: '^\\.\\./(?!common/)[^.][^/]*/', message: 'an adapter never imports another adapter (only adapters/common)' },
      { regex: '^\\.\\./\\.\\./(?!domain/)', message: 'adapters import only the domain' },
    ),
  },
  {
    files: ['client/**/*.ts'],
    rules: restrict({ regex: '^(\\.\\./)+worker/', message: 'client/ never imports worker/ (shared settings live in connection/)' }),
  },
  {
    files: ['worker/**/*.ts'],
    rules: restrict({ regex: '^(\\.\\./)+client/', message: 'worker/ never imports client/ (shared settings live in connection/)' }),
  },
  {
    files: ['connection/**/*.ts'],
    rules: restrict({ regex: '^\\.\\./(?!domain/)', message: 'connection/ is shared by client/ and worker/ and imports neither' }),
  },
);
