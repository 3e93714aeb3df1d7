/**
 * Access to the simulated hardware document (`sim/hardware.json` under the data directory), shared
 * by node agents, the CLI and tests. Every access first advances the time-dependent state.
 */
import { join } from 'node:path';
import { JsonFileStore } from '../common/json-file.js';
import { advance, LOG_LIMIT, simNow, type SimLogEntry, type SimState } from './state.js';

export const hardwarePath = (home: string): string => join(home, 'sim', 'hardware.json');

export class SimHardware {
  readonly file: JsonFileStore<SimState>;
  constructor(readonly path: string) {
    this.file = new JsonFileStore<SimState>(path, { parse: (raw) => raw as SimState });
  }

  static forHome(home: string): SimHardware {
    return new SimHardware(hardwarePath(home));
  }

  exists(): boolean {
    return this.file.exists();
  }

  /** Runs `fn` on the advanced state under the lock; writes only if `fn` returns. */
  async mutate<R>(fn: (s: SimState, now: number) => R): Promise<R> {
    return this.file.update((s) => {
      const now = simNow(s);
      advance(s, now);
      return fn(s, now);
    });
  }

  /** A consistent, advanced view of the state (nothing written). */
  read(): { state: SimState; now: number } {
    const state = this.file.read();
    const now = simNow(state);
    advance(state, now);
    return { state, now };
  }

  async replace(state: SimState): Promise<void> {
    await this.file.write(state);
  }

  /** Appends to the RPC log (bounded). */
  static log(s: SimState, entry: Omit<SimLogEntry, 'seq' | 'at'>): void {
    s.logSeq += 1;
    s.log.push({ seq: s.logSeq, at: Date.now(), ...entry });
    const limit = s.params.logLimit ?? LOG_LIMIT;
    if (s.log.length > limit) s.log.splice(0, s.log.length - limit);
  }

  async appendLog(entry: Omit<SimLogEntry, 'seq' | 'at'>): Promise<void> {
    await this.file.update((s) => SimHardware.log(s, entry));
  }
}
