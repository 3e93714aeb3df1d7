/**
 * Following a node operation in a terminal: its own feedback lines, each child's feedback lines
 * prefixed with the instance name (as `instance migrate` prints them for one), and on a TTY a
 * progress bar over the instances (finished / all).
 */
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { WorkflowHandle } from '@temporalio/client';
import { isFinal } from '../domain/node-ops.js';
import { feedbackQuery, nodeProgressQuery, type NodeProgressView } from '../workflows/messages.js';
import type { Follower } from './follow.js';

const POLL_MS = 500;

export function followNode(handle: WorkflowHandle, opts: { bar: boolean; write: (line: string) => void }): Follower {
  let shown = 0;
  let stopped = false;
  /** Per child: lines printed, and whether its feedback is complete. */
  const children = new Map<string, { shown: number; complete: boolean }>();
  const multibar = opts.bar
    ? new MultiBar(
        { format: ' instances [{bar}] {value}/{total} finished, {running} running', hideCursor: true, clearOnComplete: true },
        Presets.shades_classic,
      )
    : null;
  let bar: SingleBar | null = null;
  const print = (line: string) => (multibar && bar ? multibar.log(`${line}\n`) : opts.write(line));
  const flush = (lines: string[]) => {
    for (; shown < lines.length; shown++) print(lines[shown]!);
  };
  const childLines = async (view: NodeProgressView) => {
    for (const e of view.instances) {
      if (!e.workflowId) continue;
      const c = children.get(e.instance) ?? { shown: 0, complete: false };
      children.set(e.instance, c);
      if (c.complete) continue;
      const final = isFinal(e.state);
      try {
        const lines = await handle.client.getHandle(e.workflowId).query(feedbackQuery);
        for (; c.shown < lines.length; c.shown++) print(`${e.instance}: ${lines[c.shown]!}`);
        if (final) c.complete = true;
      } catch {
        // not answerable yet (or the child's worker is away): next round
      }
    }
  };
  const loop = (async () => {
    while (!stopped) {
      try {
        const view = await handle.query(nodeProgressQuery);
        await childLines(view);
        flush(view.feedback);
        if (multibar && view.counts.total > 0) {
          const finished = view.counts.total - view.counts.running - view.counts.waiting;
          if (!bar) bar = multibar.create(view.counts.total, finished, { running: view.counts.running });
          else bar.update(finished, { running: view.counts.running });
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
      // The last lines of children that finished since the last round.
      try {
        await childLines(await handle.query(nodeProgressQuery));
      } catch {
        // the parent's worker is away: its result still carries its own lines
      }
      multibar?.stop();
      bar = null;
    },
  };
}
