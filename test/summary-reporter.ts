/**
 * Lists tests by name after vitest's own summary (which only counts them):
 * - skipped and todo tests, so that no test is skipped silently (the JSON report counts them too,
 *   numPendingTests and numTodoTests, which `.ci/run` prints as "N skipped");
 * - flaky tests: the server-backed tiers retry a failed test once (vitest.config.ts), and a test that
 *   passed only on its retry is named here, so a retry never hides a problem silently;
 * - failed tests, once more at the very end, where a truncated log still shows them.
 */
import type { Reporter, TestModule, Vitest } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  private log: (line: string) => void = (line) => console.log(line);
  /** Under `-t`, every test the filter leaves out counts as skipped: those are only counted. */
  private nameFilter = false;

  onInit(vitest: Vitest): void {
    this.log = (line) => vitest.logger.log(line);
    this.nameFilter = vitest.config.testNamePattern !== undefined;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const skipped: string[] = [];
    const flaky: string[] = [];
    const failed: string[] = [];
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const r = t.result();
        const name = `${m.relativeModuleId} > ${t.fullName}`;
        if (r.state === 'skipped') {
          const note = r.note ? ` (${r.note})` : '';
          skipped.push(`   ↓ ${name}${t.options.mode === 'todo' ? ' [todo]' : ''}${note}`);
        } else if (r.state === 'failed') {
          failed.push(`   × ${name}`);
        } else if (r.state === 'passed' && t.diagnostic()?.flaky) {
          flaky.push(`   ↻ ${name} (passed on retry ${t.diagnostic()?.retryCount ?? 1})`);
        }
      }
      if (m.state() === 'failed' && m.children.size === 0) failed.push(`   × ${m.relativeModuleId} (the file failed to load)`);
    }
    if (skipped.length && this.nameFilter) this.log(` Skipped tests: ${skipped.length} (with the name filter, not listed)\n`);
    else this.list('Skipped tests', skipped);
    this.list('Flaky tests', flaky);
    this.list('Failed tests', failed);
  }

  private list(title: string, lines: string[]): void {
    if (lines.length === 0) return;
    this.log(` ${title} (${lines.length}):`);
    for (const line of lines) this.log(line);
    this.log('');
  }
}
