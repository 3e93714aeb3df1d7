/**
 * A JSON document on disk, shared by several processes.
 *
 * - Writes are atomic: the new document goes to a temporary file which is renamed over the old one,
 *   so a reader (or a process that crashes mid-write) sees the old or the new document, never half.
 * - Read-modify-write cycles are serialised across processes by a lock file created with O_EXCL.
 *   The cycle itself is synchronous, so within one process nothing interleaves with it either.
 * - A lock whose owner process is gone, or that is older than `staleMs`, is broken.
 */
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreBusyError } from '../../domain/ports.js';

export interface JsonFileStoreOptions<T> {
  /** Validates and normalises what was read. */
  parse: (raw: unknown) => T;
  /** fsync file and directory on every write (durability across power loss, not only crashes). */
  durable?: boolean;
  staleMs?: number;
  lockTimeoutMs?: number;
}

/** The lock file was held longer than the wait allows. */
export class LockTimeoutError extends StoreBusyError {}

export class JsonFileStore<T> {
  private readonly lockPath: string;
  constructor(
    readonly path: string,
    private readonly opts: JsonFileStoreOptions<T>,
  ) {
    this.lockPath = `${path}.lock`;
  }

  exists(): boolean {
    try {
      statSync(this.path);
      return true;
    } catch {
      return false;
    }
  }

  /** The current document (no lock needed: renames are atomic). */
  read(): T {
    return this.opts.parse(JSON.parse(readFileSync(this.path, 'utf8')));
  }

  /** Replaces the document. */
  async write(doc: T): Promise<void> {
    await this.withLock(() => this.writeUnlocked(doc));
  }

  /**
   * Runs `fn` on the current document under the lock and writes the document back if `fn` returns
   * without throwing. `fn` must be synchronous; it may mutate the document in place.
   */
  async update<R>(fn: (doc: T) => R): Promise<R> {
    return this.withLock(() => {
      const doc = this.read();
      const result = fn(doc);
      this.writeUnlocked(doc);
      return result;
    });
  }

  /** Like `update`, but never writes (a consistent read under the lock). */
  async inspect<R>(fn: (doc: T) => R): Promise<R> {
    return this.withLock(() => fn(this.read()));
  }

  private writeUnlocked(doc: T): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify(doc, null, 1));
      if (this.opts.durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    if (this.opts.durable) {
      const dfd = openSync(dirname(this.path), 'r');
      try {
        fsyncSync(dfd);
      } finally {
        closeSync(dfd);
      }
    }
  }

  private async withLock<R>(fn: () => R): Promise<R> {
    const deadline = Date.now() + (this.opts.lockTimeoutMs ?? 30_000);
    mkdirSync(dirname(this.lockPath), { recursive: true });
    for (let attempt = 0; ; attempt++) {
      if (this.tryLock()) {
        try {
          return fn();
        } finally {
          try {
            unlinkSync(this.lockPath);
          } catch {
            // already broken by someone who judged it stale; nothing to release
          }
        }
      }
      if (Date.now() > deadline) throw new LockTimeoutError(`timed out waiting for the lock on ${this.path}`);
      await sleep(Math.min(2 + attempt, 20) * (0.5 + Math.random()));
    }
  }

  private tryLock(): boolean {
    try {
      const fd = openSync(this.lockPath, 'wx');
      writeSync(fd, `${process.pid}:${Math.random().toString(36).slice(2)}`);
      closeSync(fd);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const stale = this.staleLockContent();
    if (stale !== null) this.breakLock(stale);
    return false;
  }

  /**
   * Removes a lock judged stale, but only that very lock: it is first renamed aside (atomic, one
   * process wins), and if what was renamed is not the lock that was judged (someone broke it and
   * locked anew in between), it is put back unless a newer lock exists.
   */
  private breakLock(judged: string): void {
    const aside = `${this.lockPath}.${process.pid}.stale`;
    try {
      renameSync(this.lockPath, aside);
    } catch {
      return; // already gone
    }
    try {
      if (readFileSync(aside, 'utf8') !== judged) linkSync(aside, this.lockPath);
    } catch {
      // a newer lock exists (EEXIST) or the file vanished: nothing to restore
    } finally {
      try {
        unlinkSync(aside);
      } catch {
        // already removed
      }
    }
  }

  /** The lock's content if it is stale (owner gone, or older than `staleMs`), else null. */
  private staleLockContent(): string | null {
    try {
      const content = readFileSync(this.lockPath, 'utf8');
      const owner = Number(content.split(':')[0]);
      const age = Date.now() - statSync(this.lockPath).mtimeMs;
      if (age > (this.opts.staleMs ?? 30_000)) return content;
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid) {
        try {
          process.kill(owner, 0);
        } catch (e) {
          return (e as NodeJS.ErrnoException).code === 'ESRCH' ? content : null;
        }
      }
      return null;
    } catch {
      return null; // vanished or half-written: just retry
    }
  }
}
