/**
 * Lists the skipped and todo tests by name after vitest's own summary (which only counts them), so
 * that no test is skipped silently. The run's JSON report counts them too (numPendingTests and
 * numTodoTests), which `.ci/run` prints as "N skipped".
 */
import type { Reporter, TestModule, Vitest } from 'vitest/node';

export default class SkippedTestsReporter implements Reporter {
  private log: (line: string) => void = (line) => console.log(line);
  /** Under `-t`, every test the filter leaves out counts as skipped: those are only counted. */
  private nameFilter = false;

  onInit(vitest: Vitest): void {
    this.log = (line) => vitest.logger.log(line);
    this.nameFilter = vitest.config.testNamePattern !== undefined;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const lines: string[] = [];
    for (const m of modules) {
      for (const t of m.children.allTests('skipped')) {
        const r = t.result();
        const note = r.state === 'skipped' && r.note ? ` (${r.note})` : '';
        lines.push(`   ↓ ${m.relativeModuleId} > ${t.fullName}${t.options.mode === 'todo' ? ' [todo]' : ''}${note}`);
      }
    }
    if (lines.length === 0) return;
    if (this.nameFilter) {
      this.log(` Skipped tests: ${lines.length} (with the name filter, not listed)\n`);
      return;
    }
    this.log(` Skipped tests (${lines.length}):`);
    for (const line of lines) this.log(line);
    this.log('');
  }
}
