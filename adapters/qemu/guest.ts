/**
 * The heartbeat guest (guest/heartbeat.S), assembled and linked at run time with GNU binutils, and
 * read back over QMP. Nothing prebuilt is shipped: the ELF is made from the source on the machine
 * that runs it (the tests, the benchmark, and the qemu backend's default kernel).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withQmp } from './qmp.js';

export const GUEST_SOURCE = fileURLToPath(new URL('./guest/heartbeat.S', import.meta.url));

/** Guest RAM address of the heartbeat counter (and of the marker right after it). */
export const HEARTBEAT_ADDR = 0x1f0000;
export const HEARTBEAT_MARKER = 0xc0ffee00;

export interface GuestOptions {
  /** MiB made non-zero once at boot: what a migration must send at least once. */
  fillMb?: number;
  /** MiB whose every page is written on every pass (memory dirtied continuously). */
  wsMb?: number;
  /**
   * Pages of the `wsMb` working set written per pass instead of all of them, walking round it: a
   * steady dirty rate of `walkPages` × 4 KiB × `hz` per second, which a throttled vCPU
   * (auto-converge) slows down.
   */
  walkPages?: number;
  /** Spin iterations per pass. */
  delay?: number;
  /** Wait for a timer tick each pass (idle guest) instead of running flat out. */
  hlt?: boolean;
  /** Timer rate with `hlt`. */
  hz?: number;
}

export function guestName(o: GuestOptions): string {
  const walk = o.walkPages ? `-w${o.walkPages}` : '';
  return `heartbeat-f${o.fillMb ?? 0}-ws${o.wsMb ?? 0}${walk}-d${o.delay ?? 0}-${o.hlt === false ? 'spin' : `hlt${o.hz ?? 100}`}.elf`;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run ${cmd} (install binutils): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

/** Builds the guest into `dir` (once per option set; an existing build is reused). Returns its path. */
export function buildGuest(dir: string, o: GuestOptions = {}): string {
  mkdirSync(dir, { recursive: true });
  const out = join(dir, guestName(o));
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}`;
  const defs = {
    FILL_MB: o.fillMb ?? 0,
    WS_MB: o.wsMb ?? 0,
    WALK: o.walkPages ?? 0,
    DELAY: o.delay ?? 0,
    HLT: o.hlt === false ? 0 : 1,
    HZ: o.hz ?? 100,
  };
  const sym = Object.entries(defs).flatMap(([k, v]) => ['--defsym', `${k}=${v}`]);
  run('as', ['--32', ...sym, '-o', `${tmp}.o`, GUEST_SOURCE]);
  // Linked at 1 MiB, where multiboot loaders put kernels; the header sits in the first 8 KiB.
  run('ld', ['-m', 'elf_i386', '-Ttext=0x100000', '-e', '_start', '-o', tmp, `${tmp}.o`]);
  renameSync(tmp, out);
  return out;
}

export interface Heartbeat {
  counter: number;
  /** The guest booted (the marker is in place). */
  booted: boolean;
}

/** Reads the guest's heartbeat through the instance's QMP socket. */
export async function readHeartbeat(qmpPath: string): Promise<Heartbeat> {
  return withQmp(qmpPath, async (q) => parseXp(await q.hmp(`xp /2wx 0x${HEARTBEAT_ADDR.toString(16)}`)));
}

/** `00000000001f0000: 0x00000011 0xc0ffee00` → counter 17, booted. */
export function parseXp(out: string): Heartbeat {
  const m = /:\s*0x([0-9a-f]+)\s+0x([0-9a-f]+)/i.exec(out);
  if (!m) throw new Error(`unexpected xp output: ${out}`);
  return { counter: parseInt(m[1]!, 16), booted: parseInt(m[2]!, 16) === HEARTBEAT_MARKER };
}
