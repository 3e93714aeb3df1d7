#!/usr/bin/env node
// The per-module mutation gate (`npm run test:mutation` runs it after Stryker; docs/mutation-testing.md).
// Stryker's `thresholds.break` holds only the total score; this reads Stryker's JSON report, prints one
// row per mutated file — mutants, killed, survived, no coverage, timeout, score — and exits 1 when any
// file scores below the threshold (85 %, or `--min <percent>`), lists its surviving mutants, and exits
// 2 when the report is missing or has no files.
//
// Score as Stryker computes it: (killed + timeout) / (killed + timeout + survived + no coverage);
// ignored mutants (a `// Stryker disable` comment) and compile or runtime errors are not counted.
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const reportPath = resolve(opt('--report', 'reports/mutation/mutation.json'));
const min = Number(opt('--min', '85'));

let report;
try {
  report = JSON.parse(readFileSync(reportPath, 'utf8'));
} catch (e) {
  console.error(`mutation gate: cannot read Stryker's JSON report ${relative(process.cwd(), reportPath)}: ${e.message}`);
  process.exit(2);
}

const rows = [];
for (const [file, { mutants }] of Object.entries(report.files ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
  const count = (status) => mutants.filter((m) => m.status === status).length;
  const r = {
    file: relative(process.cwd(), resolve(file)),
    killed: count('Killed'),
    survived: count('Survived'),
    noCoverage: count('NoCoverage'),
    timeout: count('Timeout'),
    ignored: count('Ignored'),
    survivors: mutants.filter((m) => m.status === 'Survived' || m.status === 'NoCoverage'),
  };
  r.mutants = r.killed + r.survived + r.noCoverage + r.timeout;
  r.score = r.mutants === 0 ? 100 : (100 * (r.killed + r.timeout)) / r.mutants;
  rows.push(r);
}
if (rows.length === 0) {
  console.error(`mutation gate: ${relative(process.cwd(), reportPath)} lists no mutated files`);
  process.exit(2);
}

const total = rows.reduce(
  (t, r) => ({
    mutants: t.mutants + r.mutants,
    killed: t.killed + r.killed,
    survived: t.survived + r.survived,
    noCoverage: t.noCoverage + r.noCoverage,
    timeout: t.timeout + r.timeout,
    ignored: t.ignored + r.ignored,
  }),
  { mutants: 0, killed: 0, survived: 0, noCoverage: 0, timeout: 0, ignored: 0 },
);
total.score = total.mutants === 0 ? 100 : (100 * (total.killed + total.timeout)) / total.mutants;

const cols = [
  ['file', (r) => r.file, 'l'],
  ['mutants', (r) => r.mutants],
  ['killed', (r) => r.killed],
  ['survived', (r) => r.survived],
  ['no coverage', (r) => r.noCoverage],
  ['timeout', (r) => r.timeout],
  ['ignored', (r) => r.ignored],
  ['score', (r) => `${r.score.toFixed(2)} %`],
  ['', (r) => (r.file === 'all files' ? '' : r.score < min ? `BELOW ${min} %` : 'ok'), 'l'],
];
const table = [
  cols.map(([h]) => h),
  ...rows.map((r) => cols.map(([, f]) => String(f(r)))),
  cols.map(([, f]) => String(f({ ...total, file: 'all files' }))),
];
const widths = cols.map((_, i) => Math.max(...table.map((row) => row[i].length)));
const line = (row) =>
  row
    .map((cell, i) => (cols[i][2] === 'l' ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
    .join('  ')
    .trimEnd();
const rule = widths.map((w) => '-'.repeat(w)).join('  ');
console.log(`\nMutation score per module (threshold ${min} % in every module):`);
console.log(line(table[0]));
console.log(rule);
for (const row of table.slice(1, -1)) console.log(line(row));
console.log(rule);
console.log(line(table.at(-1)));

const failing = rows.filter((r) => r.score < min);
if (failing.length > 0) {
  console.log(`\nmutation gate: FAILED — ${failing.length} module(s) below ${min} %. Surviving mutants:`);
  for (const r of failing) {
    for (const m of r.survivors) {
      const where = `${r.file}:${m.location.start.line}:${m.location.start.column}`;
      console.log(
        `  ${where}  ${m.mutatorName}  ${m.status === 'NoCoverage' ? '(no coverage) ' : ''}${JSON.stringify(m.replacement ?? '')}`,
      );
    }
  }
  process.exit(1);
}
console.log(`\nmutation gate: every module at or above ${min} %`);
