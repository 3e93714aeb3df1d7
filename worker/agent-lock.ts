/**
 * One agent per node: a node agent process holds `<GANETI_TEMPORAL_HOME>/locks/node-agent.<node>.lock`
 * while it runs. The file is created with O_EXCL and names its holder (pid and /proc start time); a
 * second agent for the node finds it held by a live process and refuses to start. A lock left by a
 * process that is gone (SIGKILL) is taken over: renamed aside first (one process wins the rename),
 * and put back if what was renamed is not the lock that was judged stale. Released on exit.
 */
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class AgentLockedError extends Error {
  override readonly name = 'AgentLockedError';
}

export const agentLockPath = (home: string, node: string): string => join(home, 'locks', `node-agent.${node}.lock`);

/** State (field 3) and start time (field 22) of `pid` from /proc/<pid>/stat, or null (gone, or no /proc). */
function procStat(pid: number): { state: string; startTime: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[0] && f[19] ? { state: f[0], startTime: f[19] } : null;
  } catch {
    return null;
  }
}

const startTimeOf = (pid: number): string | null => procStat(pid)?.startTime ?? null;

interface Holder {
  pid: number;
  startTime: string | null;
  node: string;
}

function alive(h: Holder): boolean {
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const now = procStat(h.pid);
  if (now?.state === 'Z') return false; // killed, not yet reaped by its parent
  // A recycled pid has another start time; without /proc the pid check is all there is.
  return h.startTime === null || now === null || now.startTime === h.startTime;
}

export interface AgentLock {
  readonly path: string;
  release(): void;
}

/** Takes the node's agent lock or throws AgentLockedError naming the agent that holds it. */
export function lockNodeAgent(home: string, node: string): AgentLock {
  const path = agentLockPath(home, node);
  mkdirSync(join(home, 'locks'), { recursive: true });
  const me: Holder = { pid: process.pid, startTime: startTimeOf(process.pid), node };
  const content = JSON.stringify(me);
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      try {
        writeSync(fd, content);
      } finally {
        closeSync(fd);
      }
      return held(path, content);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      continue; // released meanwhile: try again
    }
    let holder: Holder | null;
    try {
      holder = JSON.parse(text) as Holder;
    } catch {
      holder = null; // half-written by a starting agent: look again
    }
    if (holder && alive(holder)) {
      throw new AgentLockedError(
        `a node agent for ${node} already runs (pid ${holder.pid}, lock ${path}); one agent per node: stop it first`,
      );
    }
    if (holder) breakStale(path, text);
  }
  throw new AgentLockedError(`could not take the node agent lock ${path}`);
}

function breakStale(path: string, judged: string): void {
  const aside = `${path}.${process.pid}.stale`;
  try {
    renameSync(path, aside);
  } catch {
    return;
  }
  try {
    if (readFileSync(aside, 'utf8') !== judged) linkSync(aside, path);
  } catch {
    // a newer lock exists, or the file vanished
  } finally {
    try {
      unlinkSync(aside);
    } catch {
      // already gone
    }
  }
}

function held(path: string, content: string): AgentLock {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.removeListener('exit', release);
    try {
      if (readFileSync(path, 'utf8') === content) unlinkSync(path);
    } catch {
      // gone already
    }
  };
  process.on('exit', release);
  return { path, release };
}
