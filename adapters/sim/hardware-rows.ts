/**
 * The simulated hardware as rows of an SQLite database (`sim/hardware.db`), opened by every node
 * agent process: a row per node (its JSON), a row per other top-level field (clock, params, counters),
 * a row per fault, and the RPC log as a bounded table. A state is loaded whole or for some nodes
 * (`scope.ts`: a node and the nodes its time-dependent state involves), changed in memory, and
 * written back row by row: only the rows whose serialized JSON differs are written, so an RPC on one
 * node does not rewrite the other nodes. Each row carries a version, incremented on every write of
 * it. Beside the document: each accumulating DRBD device's clock (`clocks`) and an index of the
 * active migrations (`migrations`, derived from the node rows), which finds a node's incoming
 * migrations' sources without loading every node.
 */
import type { Database, Statement } from 'better-sqlite3';
import { clockKey, LOG_LIMIT, type AdvanceView, type SimLogEntry, type SimNodeHw, type SimState } from './state.js';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, json TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS nodes (k TEXT PRIMARY KEY, json TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS faults (k TEXT PRIMARY KEY, json TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clocks (node TEXT NOT NULL, minor TEXT NOT NULL, t REAL NOT NULL, PRIMARY KEY (node, minor));
CREATE TABLE IF NOT EXISTS migrations (source TEXT NOT NULL, instance TEXT NOT NULL, target TEXT NOT NULL, PRIMARY KEY (source, instance));
CREATE INDEX IF NOT EXISTS migrations_target ON migrations (target);
`;

type Keyed = 'meta' | 'nodes' | 'faults';
const KEYED: readonly Keyed[] = ['meta', 'nodes', 'faults'];

/** Rows as loaded: key → serialized JSON. */
type Rows = Map<string, string>;

/** A loaded state and what it was loaded from (to write back only what changed). */
export interface Loaded {
  state: SimState;
  rows: Record<Keyed, Rows>;
  /** The nodes loaded and the devices' clocks (changed by `settleClocks`). */
  view: AdvanceView;
  /** The clocks as loaded. */
  clocks: Map<string, number>;
}

/** A node's active outgoing migrations: [instance, target]. */
function activeMigrations(n: SimNodeHw): [string, string][] {
  return Object.entries(n.processes).flatMap(([name, p]) =>
    p.migration?.status === 'active' || p.migration?.status === 'postcopy-active' ? [[name, p.migration.targetNode]] : [],
  );
}

/** The log entries `SimHardware.log` appended during a mutation whose log was not loaded. */
const pendingLog = new WeakMap<SimState, SimLogEntry[]>();
/** The serialized log entries as loaded, for states whose log was loaded. */
const loadedLog = new WeakMap<SimState, string[]>();

/** Appends to the state's log without loading it when it was not loaded; false if it was. */
export function appendPending(s: SimState, entry: SimLogEntry): boolean {
  const pending = pendingLog.get(s);
  if (!pending) return false;
  pending.push(entry);
  return true;
}

/** `key` → the top-level field of the state that the row of `meta` holds. */
function metaEntries(s: SimState): [string, unknown][] {
  // Object.keys, not entries: reading `log` would load it.
  const keys = Object.keys(s).filter((k) => k !== 'nodes' && k !== 'faults' && k !== 'log');
  return keys.map((k) => [k, (s as unknown as Record<string, unknown>)[k]]);
}

function rowsOf(s: SimState): Record<Keyed, [string, string][]> {
  return {
    meta: metaEntries(s).map(([k, v]) => [k, JSON.stringify(v)]),
    nodes: Object.entries(s.nodes).map(([k, v]) => [k, JSON.stringify(v)]),
    faults: s.faults.map((f) => [String(f.id), JSON.stringify(f)]),
  };
}

export class HardwareRows {
  private readonly statements = new Map<string, Statement>();
  constructor(private readonly db: Database) {}

  /** A prepared statement, cached per connection. */
  private sql(text: string): Statement {
    let st = this.statements.get(text);
    if (!st) {
      st = this.db.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  initialised(): boolean {
    return this.sql(`SELECT 1 FROM meta WHERE k = 'version'`).get() !== undefined;
  }

  /**
   * Loads the state (call within a transaction): every node, or the nodes `core` and those their
   * time-dependent state involves: their DRBD devices' peers, their active migrations' other ends
   * (either way), and those ends' devices of the migrating instance's peers. The log is loaded only
   * when `log` is read: entries `SimHardware.log` appends before that are kept apart and inserted by
   * `save`.
   */
  load(core: readonly string[] | null = null): Loaded {
    const rows = {} as Record<Keyed, Rows>;
    for (const t of ['meta', 'faults'] as const) {
      const all = this.sql(`SELECT k, json FROM ${t} ORDER BY rowid`).all() as { k: string; json: string }[];
      rows[t] = new Map(all.map((r) => [r.k, r.json]));
    }
    const state = Object.fromEntries([...rows.meta].map(([k, json]) => [k, JSON.parse(json) as unknown])) as unknown as SimState;
    state.faults = [...rows.faults.values()].map((json) => JSON.parse(json) as SimState['faults'][number]);
    const found: { id: number; k: string; json: string }[] = [];
    const parsed = new Map<string, SimNodeHw>();
    let scope: Set<string> | null = null;
    if (core === null) {
      found.push(...(this.sql('SELECT rowid AS id, k, json FROM nodes').all() as typeof found));
    } else {
      const loaded = (scope = new Set<string>());
      const fetch = (names: Iterable<string>): void => {
        const want = [...new Set(names)].filter((n) => !loaded.has(n));
        if (!want.length) return;
        for (const n of want) loaded.add(n);
        const more = this.sql('SELECT rowid AS id, k, json FROM nodes WHERE k IN (SELECT value FROM json_each(?))').all(
          JSON.stringify(want),
        ) as typeof found;
        for (const r of more) parsed.set(r.k, JSON.parse(r.json) as SimNodeHw);
        found.push(...more);
      };
      fetch(core);
      const ends: [string, string, string][] = this.incoming(core).map((m) => [m.source, m.instance, m.target]);
      const related: string[] = ends.map(([source]) => source);
      for (const c of core) {
        const n = parsed.get(c);
        if (!n) continue;
        for (const d of Object.values(n.drbd)) related.push(d.peerNode);
        for (const [instance, target] of activeMigrations(n)) {
          related.push(target);
          ends.push([c, instance, target]);
        }
      }
      fetch(related);
      const peers = (node: string, instance: string): string[] =>
        Object.values(parsed.get(node)?.drbd ?? {}).flatMap((d) => (d.instance === instance ? [d.peerNode] : []));
      fetch(ends.flatMap(([source, instance, target]) => [...peers(source, instance), ...peers(target, instance)]));
    }
    found.sort((a, b) => a.id - b.id);
    rows.nodes = new Map(found.map((r) => [r.k, r.json]));
    state.nodes = Object.fromEntries(found.map((r) => [r.k, parsed.get(r.k) ?? (JSON.parse(r.json) as SimNodeHw)]));
    const clockRows = (
      scope === null
        ? this.sql('SELECT node, minor, t FROM clocks').all()
        : this.sql('SELECT node, minor, t FROM clocks WHERE node IN (SELECT value FROM json_each(?))').all(JSON.stringify([...scope]))
    ) as { node: string; minor: string; t: number }[];
    const clocks = new Map(clockRows.map((r) => [clockKey(r.node, r.minor), r.t]));
    this.lazyLog(state, state.logSeq);
    return { state, rows, view: { nodes: scope, clocks: new Map(clocks) }, clocks };
  }

  /** The active migrations to one of `targets` (from the index). */
  private incoming(targets: readonly string[]): { source: string; instance: string; target: string }[] {
    if (!targets.length) return [];
    return this.sql('SELECT source, instance, target FROM migrations WHERE target IN (SELECT value FROM json_each(?))').all(
      JSON.stringify(targets),
    ) as { source: string; instance: string; target: string }[];
  }

  private lazyLog(state: SimState, upTo: number): void {
    const pending: SimLogEntry[] = [];
    pendingLog.set(state, pending);
    let log: SimLogEntry[] | null = null;
    const select = this.sql('SELECT json FROM log WHERE seq <= ? ORDER BY seq').pluck();
    Object.defineProperty(state, 'log', {
      enumerable: true,
      configurable: true,
      get: (): SimLogEntry[] => {
        if (!log) {
          const raw = select.all(upTo) as string[];
          loadedLog.set(state, raw);
          log = [...raw.map((j) => JSON.parse(j) as SimLogEntry), ...pending];
          pendingLog.delete(state);
        }
        return log;
      },
      set: (v: SimLogEntry[]) => {
        if (!log) void state.log; // load first, so that `save` sees a loaded (then replaced) log
        log = v;
      },
    });
  }

  /** Writes back the rows that changed since `loaded` (call within the same transaction). */
  save(loaded: Loaded): void {
    const now = rowsOf(loaded.state);
    for (const t of KEYED) {
      const before = loaded.rows[t];
      const upsert = this.sql(
        `INSERT INTO ${t} (k, json) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET json = excluded.json, version = version + 1`,
      );
      for (const [k, json] of now[t]) {
        if (before.get(k) === json) continue;
        upsert.run(k, json);
        if (t === 'nodes') this.index(k, loaded.state.nodes[k]);
      }
      const keep = new Set(now[t].map(([k]) => k));
      const del = this.sql(`DELETE FROM ${t} WHERE k = ?`);
      for (const k of before.keys()) {
        if (keep.has(k)) continue;
        del.run(k);
        if (t === 'nodes') this.index(k, undefined);
      }
    }
    this.saveClocks(loaded.clocks, loaded.view.clocks);
    this.saveLog(loaded.state);
  }

  /** Keeps the index of active migrations in step with node `k`'s row. */
  private index(k: string, n: SimNodeHw | undefined): void {
    this.sql('DELETE FROM migrations WHERE source = ?').run(k);
    const insert = this.sql('INSERT INTO migrations (source, instance, target) VALUES (?, ?, ?)');
    for (const [instance, target] of n ? activeMigrations(n) : []) insert.run(k, instance, target);
  }

  private saveClocks(before: Map<string, number>, after: Map<string, number>): void {
    const upsert = this.sql('INSERT INTO clocks (node, minor, t) VALUES (?, ?, ?) ON CONFLICT (node, minor) DO UPDATE SET t = excluded.t');
    const del = this.sql('DELETE FROM clocks WHERE node = ? AND minor = ?');
    for (const [k, t] of after) if (before.get(k) !== t) upsert.run(...k.split('\t'), t);
    for (const k of before.keys()) if (!after.has(k)) del.run(...k.split('\t'));
  }

  /** Rebuilds the index of active migrations from the node rows (a database of an earlier version has none). */
  reindex(): void {
    this.sql('DELETE FROM migrations').run();
    const all = this.sql('SELECT k, json FROM nodes').all() as { k: string; json: string }[];
    for (const r of all) this.index(r.k, JSON.parse(r.json) as SimNodeHw);
  }

  private saveLog(s: SimState): void {
    const pending = pendingLog.get(s);
    if (pending) {
      if (!pending.length) return;
      const insert = this.sql('INSERT OR REPLACE INTO log (seq, json) VALUES (?, ?)');
      for (const e of pending) insert.run(e.seq, JSON.stringify(e));
      this.trimLog(s.params.logLimit ?? LOG_LIMIT);
      return;
    }
    const raw = loadedLog.get(s) ?? [];
    const log = s.log.map((e) => JSON.stringify(e));
    if (log.length === raw.length && log.every((j, i) => j === raw[i])) return;
    this.writeLog(s.log);
  }

  private writeLog(log: SimLogEntry[]): void {
    this.sql('DELETE FROM log').run();
    const insert = this.sql('INSERT OR REPLACE INTO log (seq, json) VALUES (?, ?)');
    for (const e of log) insert.run(e.seq, JSON.stringify(e));
  }

  /** Keeps the newest `limit` entries. */
  private trimLog(limit: number): void {
    this.sql('DELETE FROM log WHERE seq <= (SELECT seq FROM log ORDER BY seq DESC LIMIT 1 OFFSET ?)').run(Math.max(0, limit));
  }

  /** Replaces everything with `s` (call within a transaction). */
  replace(s: SimState): void {
    for (const t of KEYED) this.sql(`DELETE FROM ${t}`).run();
    const now = rowsOf(s);
    for (const t of KEYED) {
      const insert = this.sql(`INSERT INTO ${t} (k, json) VALUES (?, ?)`);
      for (const [k, json] of now[t]) insert.run(k, json);
    }
    this.sql('DELETE FROM clocks').run();
    this.reindex();
    this.writeLog(s.log);
  }

  /** Appends one entry to the log without loading the state (call within a transaction). */
  appendLog(entry: Omit<SimLogEntry, 'seq' | 'at'>): void {
    const meta = (k: string): unknown => {
      const json = this.sql('SELECT json FROM meta WHERE k = ?').pluck().get(k) as string | undefined;
      if (json === undefined) throw new Error(`the simulated hardware has no ${k}`);
      return JSON.parse(json);
    };
    const seq = (meta('logSeq') as number) + 1;
    const params = meta('params') as SimState['params'];
    this.sql(`UPDATE meta SET json = ?, version = version + 1 WHERE k = 'logSeq'`).run(JSON.stringify(seq));
    this.sql('INSERT OR REPLACE INTO log (seq, json) VALUES (?, ?)').run(seq, JSON.stringify({ seq, at: Date.now(), ...entry }));
    this.trimLog(params.logLimit ?? LOG_LIMIT);
  }

  /** The version of every row of a table (tests: which rows a mutation wrote). */
  versions(table: Keyed): Record<string, number> {
    const all = this.sql(`SELECT k, version FROM ${table}`).all() as { k: string; version: number }[];
    return Object.fromEntries(all.map((r) => [r.k, r.version]));
  }
}
