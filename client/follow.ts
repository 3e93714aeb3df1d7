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

/** What a follower's polling round works with: the printer, and the progress bar on a TTY. */
export interface FollowRound {
  print(line: string): void;
  /** Prints the operation's own lines not printed yet. */
  flush(lines: string[]): void;
  /** Null without a TTY. */
  readonly multibar: MultiBar | null;
  bar: SingleBar | null;
}

/**
 * The polling loop both followers share: `round` runs every `pollMs` until `stop()` (a round that
 * throws — no worker answered — is tried again next time), then `last` once.
 */
export function pollingFollower(
  opts: { bar: boolean; write: (line: string) => void; format: string; pollMs: number },
  round: (r: FollowRound) => Promise<void>,
  last?: (r: FollowRound) => Promise<void>,
): Follower {
  let shown = 0;
  let stopped = false;
  const r: FollowRound = {
    multibar: opts.bar
      ? new MultiBar({ format: opts.format, hideCursor: true, clearOnComplete: true, autopadding: true }, Presets.shades_classic)
      : null,
    bar: null,
    print: (line) => (r.multibar && r.bar ? r.multibar.log(`${line}\n`) : opts.write(line)),
    flush: (lines) => {
      for (; shown < lines.length; shown++) r.print(lines[shown]!);
    },
  };
  const loop = (async () => {
    while (!stopped) {
      try {
        await round(r);
      } catch {
        // no worker answered this time; try again
      }
      await new Promise((done) => setTimeout(done, opts.pollMs));
    }
  })();
  return {
    flush: r.flush,
    async stop() {
      stopped = true;
      await loop;
      if (last) {
        try {
          await last(r);
        } catch {
          // the worker is away: the result still carries the operation's own lines
        }
      }
      r.multibar?.stop();
      r.bar = null;
    },
  };
}

function describeLive(l: LiveProgress): { label: string; value: number; detail: string } {
  if (l.kind === 'memory') {
    const detail = l.transferredRam !== null && l.totalRam !== null ? `${l.transferredRam}/${l.totalRam} MiB` : '';
    return { label: `memory transfer (${l.node})`, value: Math.min(100, l.percent ?? 0), detail };
  }
  return { label: `resync (${l.node})`, value: Math.min(100, l.percent), detail: '' };
}

export function follow(handle: WorkflowHandle, opts: { bar: boolean; write: (line: string) => void }): Follower {
  return pollingFollower({ ...opts, format: ' {label} [{bar}] {percentage}% {detail}', pollMs: 400 }, async (r) => {
    r.flush((await handle.query(progressQuery)).feedback);
    if (!r.multibar) return;
    const live = (await liveProgress(handle))[0];
    if (live) {
      const d = describeLive(live);
      if (!r.bar) r.bar = r.multibar.create(100, d.value, { label: d.label, detail: d.detail });
      else r.bar.update(d.value, { label: d.label, detail: d.detail });
    } else if (r.bar) {
      r.multibar.remove(r.bar);
      r.bar = null;
    }
  });
}
