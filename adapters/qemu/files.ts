/**
 * The QEMU driver's per-instance state on disk, one directory per node (`<state dir>/<node>/`):
 * `<instance>.json` (the metadata: process identity, runtime, incoming port, migration target),
 * `<instance>.qmp` (the monitor socket), `<instance>.log` (QEMU's output) and `<instance>.qmp-journal`
 * (the QMP commands sent). Metadata is written atomically (temporary file, rename), and a process is
 * found again from it: by pid and start time, or by its unique monitor socket when the pid was never
 * recorded.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HvMigrationSettings } from '../../domain/ports.js';
import { findQemuByArg, isOurQemu, startTimeOf } from './process.js';
import { qmpArg } from './runtime.js';

/** Metadata without a pid younger than this is a start in progress, not a leftover. */
const STARTING_GRACE_MS = 30_000;

/** What the driver records per instance (the "runtime file" plus process identity). */
export interface QemuMeta {
  instance: string;
  node: string;
  pid: number | null;
  /** When the start was recorded (ms since the epoch). */
  createdAt?: number;
  /** /proc start time of `pid`: tells our process from a later one with the same pid. */
  startTime: string | null;
  qmp: string;
  log: string;
  argv: string[];
  /** Serialized QemuRuntime: the migration info this process answers with. */
  runtime: string;
  /** Current memory (the balloon target), MiB. */
  memory: number;
  vcpus: number;
  /** `postcopy`: the postcopy-ram capability was asked for at accept. */
  incoming?: { ip: string; port: number; postcopy?: boolean };
  migration?: QemuMigrationMeta;
}

/** The outgoing migration: its target, its settings and every control issued, recorded before it is sent. */
export interface QemuMigrationMeta {
  targetNode: string;
  ip: string;
  port: number;
  live: boolean;
  startedAt: number;
  /** The policy's settings (absent: the instance's hvparams, no capabilities). */
  settings?: HvMigrationSettings;
  /** The downtime limit set last (settings, hvparams or set-downtime), ms. */
  downtimeMs?: number;
  /** `migrate-start-postcopy` was (about to be) sent: the source must never run again. */
  postcopy?: boolean;
  /** The source was stopped so that the transfer completes (pause-source). */
  pausedSource?: boolean;
}

/** An instance's metadata and its live process (null: none runs). */
export interface Located {
  meta: QemuMeta;
  pid: number | null;
}

/** The state files of one node's instances. */
export class QemuFiles {
  constructor(readonly dir: string) {}

  metaPath(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  qmpPath(name: string): string {
    return join(this.dir, `${name}.qmp`);
  }

  logPath(name: string): string {
    return join(this.dir, `${name}.log`);
  }

  /** QMP commands sent to the instance's process, with their errors (read by operators and tests). */
  journalPath(name: string): string {
    return join(this.dir, `${name}.qmp-journal`);
  }

  /** Appends a line to the instance's QMP journal; never fails. */
  journal(name: string): (line: string) => void {
    const path = this.journalPath(name);
    return (line) => {
      try {
        appendFileSync(path, `${new Date().toISOString()} ${line}\n`);
      } catch {
        // the journal is for people; never fail an RPC over it
      }
    };
  }

  readMeta(name: string): QemuMeta | null {
    try {
      return JSON.parse(readFileSync(this.metaPath(name), 'utf8')) as QemuMeta;
    } catch {
      return null;
    }
  }

  writeMeta(meta: QemuMeta): void {
    mkdirSync(this.dir, { recursive: true });
    const path = this.metaPath(meta.instance);
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(meta, null, 1));
    renameSync(tmp, path);
  }

  removeFiles(meta: QemuMeta): void {
    rmSync(this.metaPath(meta.instance), { force: true });
    rmSync(meta.qmp, { force: true });
  }

  /**
   * Removes the files of an instance whose process is gone. Metadata without a pid that is only
   * seconds old belongs to a start in progress (possibly in another agent process, between writing
   * its intent and the spawn): it is left alone, or its monitor socket would be deleted under QEMU.
   */
  dropIfStale(found: Located | null): void {
    if (!found || found.pid !== null) return;
    if (found.meta.pid === null && Date.now() - (found.meta.createdAt ?? 0) < STARTING_GRACE_MS) return;
    this.removeFiles(found.meta);
  }

  metaNames(): string[] {
    try {
      return readdirSync(this.dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -'.json'.length))
        .sort();
    } catch {
      return [];
    }
  }

  /** The instance's live process, if any (re-found by its socket when the pid was never recorded). */
  locate(name: string): Located | null {
    const meta = this.readMeta(name);
    if (!meta) return null;
    const arg = qmpArg(meta.qmp);
    if (meta.pid !== null) return { meta, pid: isOurQemu(meta.pid, arg, meta.startTime) ? meta.pid : null };
    const pid = findQemuByArg(arg);
    if (pid !== null) {
      meta.pid = pid;
      meta.startTime = startTimeOf(pid);
      this.writeMeta(meta);
    }
    return { meta, pid };
  }
}
