/**
 * Access to the simulated hardware (`sim/hardware.db` under the data directory, an SQLite database
 * in WAL mode), shared by node agents, the CLI and tests: one connection per process and file, one
 * immediate transaction per mutation. Every access first advances the time-dependent state.
 *
 * A node's RPC loads that node's rows and those of the nodes its time-dependent state involves (a
 * migration's other end, its DRBD devices' peers: `HardwareRows.load`), advances only what those rows
 * hold, and writes back only the rows that changed, so RPCs on different nodes neither read nor
 * rewrite each other's state. The CLI, the invariant checker and tests load everything. A
 * `sim/hardware.json` of an earlier version found on first open is imported and renamed to
 * `sim/hardware.json.bak`.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreBusyError } from '../../domain/ports.js';
import { appendPending, HardwareRows, SCHEMA } from './hardware-rows.js';
import { advance, LOG_LIMIT, settleClocks, simNow, type SimLogEntry, type SimState } from './state.js';

export const hardwarePath = (home: string): string => join(home, 'sim', 'hardware.db');

/** How long a mutation waits for the database's write lock in all. */
const LOCK_TIMEOUT_MS = 30_000;
/** How long SQLite itself waits for a lock before a mutation retries asynchronously. */
const BUSY_TIMEOUT_MS = 2_000;

function isBusy(e: unknown): boolean {
  return e instanceof Database.SqliteError && (e.code === 'SQLITE_BUSY' || e.code.startsWith('SQLITE_BUSY_'));
}

export class SimHardware {
  /** The JSON document an earlier version kept (imported on first open). */
  readonly legacyPath: string | null;
  private conn: { db: Database.Database; rows: HardwareRows } | null = null;

  constructor(readonly path: string) {
    this.legacyPath = path.endsWith('.db') ? `${path.slice(0, -3)}.json` : null;
  }

  static forHome(home: string): SimHardware {
    return new SimHardware(hardwarePath(home));
  }

  /** The connection; null if there is no database (nor a document to import) and `create` is false. */
  private open(create: boolean): { db: Database.Database; rows: HardwareRows } | null {
    if (this.conn) return this.conn;
    if (!create && !existsSync(this.path) && !(this.legacyPath && existsSync(this.legacyPath))) return null;
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    closeSync(openSync(this.path, 'a', 0o600)); // SQLite gives its -wal and -shm files the same mode
    const db = new Database(this.path);
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      const indexed = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'`).get() !== undefined;
      db.exec(SCHEMA);
      const rows = new HardwareRows(db);
      if (!indexed) db.transaction(() => rows.reindex()).immediate();
      this.importLegacy(db, rows);
      this.conn = { db, rows };
      return this.conn;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  private importLegacy(db: Database.Database, rows: HardwareRows): void {
    const legacy = this.legacyPath;
    if (!legacy || !existsSync(legacy)) return;
    db.transaction(() => {
      if (!rows.initialised()) rows.replace(JSON.parse(readFileSync(legacy, 'utf8')) as SimState);
    }).immediate();
    try {
      renameSync(legacy, `${legacy}.bak`);
    } catch {
      // another process imported it first and renamed it
    }
  }

  private required(): HardwareRows {
    const c = this.open(false);
    if (!c || !c.rows.initialised()) throw new Error(`no simulated hardware in ${this.path}`);
    return c.rows;
  }

  exists(): boolean {
    return this.open(false)?.rows.initialised() ?? false;
  }

  /** Runs `fn` on the advanced state in one transaction; writes (the changed rows) only if `fn` returns. */
  async mutate<R>(fn: (s: SimState, now: number) => R): Promise<R> {
    return this.mutateIn(null, fn);
  }

  /**
   * `mutate` on the rows of `nodes` and of the nodes their state involves (`HardwareRows.load`):
   * `s.nodes` holds those alone, and only they are advanced and written.
   */
  async mutateNodes<R>(nodes: readonly string[], fn: (s: SimState, now: number) => R): Promise<R> {
    return this.mutateIn(nodes, fn);
  }

  private async mutateIn<R>(nodes: readonly string[] | null, fn: (s: SimState, now: number) => R): Promise<R> {
    return this.write((rows) => {
      const loaded = rows.load(nodes);
      const now = simNow(loaded.state);
      advance(loaded.state, now, loaded.view);
      const r = fn(loaded.state, now);
      settleClocks(loaded.state, now, loaded.view);
      rows.save(loaded);
      return r;
    });
  }

  /** A consistent, advanced view of the state (nothing written). */
  read(): { state: SimState; now: number } {
    const r = this.readIn(null);
    r.state.advancedTo = Math.max(r.state.advancedTo, r.now); // every device is accounted up to now
    return r;
  }

  /** `read` of the rows of `nodes` and of the nodes their state involves (as `mutateNodes`). */
  readNodes(nodes: readonly string[]): { state: SimState; now: number } {
    return this.readIn(nodes);
  }

  private readIn(nodes: readonly string[] | null): { state: SimState; now: number } {
    const rows = this.required();
    const { state, view } = this.conn!.db.transaction(() => rows.load(nodes)).deferred();
    const now = simNow(state);
    advance(state, now, view);
    return { state, now };
  }

  async replace(state: SimState): Promise<void> {
    this.open(true);
    await this.write((rows) => rows.replace(state), false);
  }

  /** Appends to the RPC log (bounded). */
  static log(s: SimState, entry: Omit<SimLogEntry, 'seq' | 'at'>): void {
    s.logSeq += 1;
    const e: SimLogEntry = { seq: s.logSeq, at: Date.now(), ...entry };
    if (appendPending(s, e)) return; // the log was not loaded: the database bounds it
    s.log.push(e);
    const limit = s.params.logLimit ?? LOG_LIMIT;
    if (s.log.length > limit) s.log.splice(0, s.log.length - limit);
  }

  async appendLog(entry: Omit<SimLogEntry, 'seq' | 'at'>): Promise<void> {
    await this.write((rows) => rows.appendLog(entry));
  }

  /** Closes this instance's connection (it reopens on the next access). */
  close(): void {
    this.conn?.db.close();
    this.conn = null;
  }

  /** Runs `fn` in an immediate transaction, waiting (asynchronously) while another process writes. */
  private async write<R>(fn: (rows: HardwareRows) => R, needState = true): Promise<R> {
    const rows = needState ? this.required() : this.open(true)!.rows;
    const tx = this.conn!.db.transaction(() => fn(rows));
    const deadline = Date.now() + LOCK_TIMEOUT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return tx.immediate();
      } catch (e) {
        if (!isBusy(e)) throw e;
        if (Date.now() > deadline) throw new StoreBusyError(`timed out waiting for the lock on ${this.path}`);
      }
      await sleep(Math.min(2 + attempt, 20) * (0.5 + Math.random()));
    }
  }
}
