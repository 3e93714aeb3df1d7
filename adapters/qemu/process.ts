/**
 * QEMU processes as the driver sees them: spawned detached in their own process group (they must
 * outlive a node agent that crashes or restarts), identified afterwards by pid + start time +
 * command line (a pid alone may have been reused), and stopped by pid only.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Probed before QEMU binds a migration port. */
export { portFree } from '../common/net.js';

/** The kernel's view of a process: its state letter and start time (clock ticks since boot). */
function procStat(pid: number): { state: string; startTime: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', startTime: rest[19] ?? '' };
  } catch {
    return null;
  }
}

export function procCmdline(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
  } catch {
    return null;
  }
}

export function startTimeOf(pid: number): string | null {
  return procStat(pid)?.startTime ?? null;
}

/** Alive = exists and is neither a zombie nor dead (an exited child not yet reaped is gone for us). */
export function pidAlive(pid: number): boolean {
  const st = procStat(pid);
  return !!st && st.state !== 'Z' && st.state !== 'X';
}

/** A QEMU process is ours when it is alive and its command line names our monitor socket. */
export function isOurQemu(pid: number, qmpArg: string, startTime?: string | null): boolean {
  if (!pidAlive(pid)) return false;
  if (startTime && startTimeOf(pid) !== startTime) return false;
  const argv = procCmdline(pid);
  return !!argv && /qemu-system/.test(argv[0] ?? '') && argv.includes(qmpArg);
}

/** Finds the live QEMU whose command line has `qmpArg` (after a crash between spawn and recording the pid). */
export function findQemuByArg(qmpArg: string): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (isOurQemu(pid, qmpArg)) return pid;
  }
  return null;
}

/** All live QEMU processes whose command line mentions `fragment` (tests and benchmarks clean up with it). */
export function qemuProcessesMentioning(fragment: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const argv = procCmdline(pid);
    if (argv && /qemu-system/.test(argv[0] ?? '') && argv.some((a) => a.includes(fragment)) && pidAlive(pid)) out.push(pid);
  }
  return out;
}

/**
 * Starts QEMU detached (own process group, stdin closed, stdout+stderr appended to `logPath`), not
 * tied to this process's lifetime. Resolves once the process exists.
 */
export async function spawnDetached(binary: string, argv: string[], logPath: string): Promise<number> {
  const fd = openSync(logPath, 'a');
  try {
    const child = spawn(binary, argv, { detached: true, stdio: ['ignore', fd, fd] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    return child.pid!;
  } finally {
    closeSync(fd);
  }
}

/** Waits until `pid` is gone; true if it went within `timeoutMs`. */
export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** SIGKILL by pid (never by name) and wait for it to disappear. */
export async function killPid(pid: number, timeoutMs = 5000): Promise<boolean> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  return waitGone(pid, timeoutMs);
}

/** The last `max` characters of a log file (for error messages). */
export function logTail(path: string, max = 400): string {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return text.slice(-max);
  } catch {
    return '';
  }
}
