/**
 * Operator feedback lines that are computed rather than fixed (Ganeti's formats, docs/behaviour.md
 * §5 "Migration").
 */

export interface SyncSample {
  /** Real time, ms since the epoch. */
  at: number;
  percent: number;
}

export const syncProgressLine = (percent: number): string => `   - progress: ${percent.toFixed(1)}%`;

export const memoryProgressLine = (transferred: number, total: number): string =>
  `* memory transfer progress: ${((100 * transferred) / total).toFixed(2)} %`;

/**
 * Ganeti's master wait-sync loop prints, once per round, the minimum resync percentage over both
 * nodes. Our rounds run on each node; this merges their samples the same way: in time order, each
 * line shows the minimum of every node's latest sample, at most one line per `intervalMs`.
 */
export function mergeSyncProgress(perNode: SyncSample[][], intervalMs: number): string[] {
  const all = perNode
    .flatMap((samples, node) => samples.map((s) => ({ ...s, node })))
    .sort(
      (a, b) =>
        a.at - b.at ||
        // Stryker disable next-line ArithmeticOperator: equivalent: the samples are flattened in node order and the sort is stable, so ties always compare a later node with an earlier one, where + and - agree in sign
        a.node - b.node,
    );
  const latest = new Map<number, number>();
  const lines: string[] = [];
  let last = -Infinity;
  for (const s of all) {
    latest.set(s.node, s.percent);
    if (s.at - last < intervalMs * 0.9) continue;
    const min = Math.min(...latest.values());
    if (min >= 100) continue;
    lines.push(syncProgressLine(min));
    last = s.at;
  }
  return lines;
}
