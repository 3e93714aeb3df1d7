/**
 * Following an operation in a terminal (like `gnt-job watch`): feedback lines as the workflow records
 * them and, on a TTY, a live progress bar for resync and memory transfer fed by the running wait's
 * heartbeat details.
 */
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { WorkflowHandle } from '@temporalio/client';
import { progressQuery } from '../workflows/messages.js';
import { liveProgress, type LiveProgress } from './jobs.js';

export interface Follower {
  /** Print the lines not printed yet (e.g. from the final result). */
  flush(lines: string[]): void;
  stop(): Promise<void>;
}

const POLL_MS = 400;

function describeLive(l: LiveProgress): { label: string; value: number; detail: string } {
  if (l.kind === 'memory') {
    const detail = l.transferredRam !== null && l.totalRam !== null ? `${l.transferredRam}/${l.totalRam} MiB` : '';
    return { label: `memory transfer (${l.node})`, value: Math.min(100, l.percent ?? 0), detail };
  }
  return { label: `resync (${l.node})`, value: Math.min(100, l.percent), detail: '' };
}

export function follow(handle: WorkflowHandle, opts: { bar: boolean; write: (line: string) => void }): Follower {
  let shown = 0;
  let stopped = false;
  const multibar = opts.bar
    ? new MultiBar(
        { format: ' {label} [{bar}] {percentage}% {detail}', hideCursor: true, clearOnComplete: true, autopadding: true },
        Presets.shades_classic,
      )
    : null;
  let bar: SingleBar | null = null;
  const print = (line: string) => (multibar && bar ? multibar.log(`${line}\n`) : opts.write(line));
  const flush = (lines: string[]) => {
    for (; shown < lines.length; shown++) print(lines[shown]!);
  };
  const loop = (async () => {
    while (!stopped) {
      try {
        flush((await handle.query(progressQuery)).feedback);
        if (multibar) {
          const live = (await liveProgress(handle))[0];
          if (live) {
            const d = describeLive(live);
            if (!bar) bar = multibar.create(100, d.value, { label: d.label, detail: d.detail });
            else bar.update(d.value, { label: d.label, detail: d.detail });
          } else if (bar) {
            multibar.remove(bar);
            bar = null;
          }
        }
      } catch {
        // no worker answered this time; try again
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();
  return {
    flush,
    async stop() {
      stopped = true;
      await loop;
      multibar?.stop();
      bar = null;
    },
  };
}
