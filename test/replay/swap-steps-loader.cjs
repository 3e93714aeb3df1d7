// Test-only webpack loader: builds a variant of the migrate workflow in which M5 (close the target's
// disks) runs before M4 (fetch the migration information) — two steps swapped, everything else the
// same — so the replay test can prove that such a change is caught as nondeterminism.
const path = require('node:path');

const CLOSE = "    x.op.step('close-target');\n    await closeInstanceDisks(x, T);\n";
const INFO = "    x.op.step('migration-info');\n";

module.exports = function swapSteps(source) {
  if (!this.resourcePath.endsWith(`${path.sep}workflows${path.sep}migration.ts`)) return source;
  if (!source.includes(CLOSE) || !source.includes(INFO)) {
    throw new Error('swap-steps-loader: the two steps were not found in workflows/migration.ts (update the loader)');
  }
  return source.replace(CLOSE, '').replace(INFO, CLOSE + INFO);
};
