/**
 * Following a node operation in a terminal: its own feedback lines, each child's feedback lines
 * prefixed with the instance name (as `instance migrate` prints them for one), and on a TTY a
 * progress bar over the instances (finished / all).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { isFinal } from '../domain/node-ops.js';
import { feedbackQuery, nodeProgressQuery, type NodeProgressView } from '../workflows/messages.js';
import { pollingFollower, type Follower, type FollowRound } from './follow.js';

export function followNode(handle: WorkflowHandle, opts: { bar: boolean; write: (line: string) => void }): Follower {
  /** Per child: lines printed, and whether its feedback is complete. */
  const children = new Map<string, { shown: number; complete: boolean }>();
  const childLines = async (r: FollowRound, view: NodeProgressView) => {
    for (const e of view.instances) {
      if (!e.workflowId) continue;
      const c = children.get(e.instance) ?? { shown: 0, complete: false };
      children.set(e.instance, c);
      if (c.complete) continue;
      const final = isFinal(e.state);
      try {
        const lines = await handle.client.getHandle(e.workflowId).query(feedbackQuery);
        for (; c.shown < lines.length; c.shown++) r.print(`${e.instance}: ${lines[c.shown]!}`);
        if (final) c.complete = true;
      } catch {
        // not answerable yet (or the child's worker is away): next round
      }
    }
  };
  return pollingFollower(
    { ...opts, format: ' instances [{bar}] {value}/{total} finished, {running} running', pollMs: 500 },
    async (r) => {
      const view = await handle.query(nodeProgressQuery);
      await childLines(r, view);
      r.flush(view.feedback);
      if (r.multibar && view.counts.total > 0) {
        const finished = view.counts.total - view.counts.running - view.counts.waiting;
        if (!r.bar) r.bar = r.multibar.create(view.counts.total, finished, { running: view.counts.running });
        else r.bar.update(finished, { running: view.counts.running });
      }
    },
    // The last lines of children that finished since the last round.
    async (r) => childLines(r, await handle.query(nodeProgressQuery)),
  );
}
