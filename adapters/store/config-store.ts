/**
 * The cluster configuration store: one JSON document (`config.json`), written atomically and
 * durably (fsync), read-modify-write under a lock file. See docs/architecture.md for why JSON and not SQLite.
 */
import { join } from 'node:path';
import {
  ConfigError,
  type ConfigStore,
  type ReserveMemoryRequest,
  type SlotAnswer,
  type SlotRequest,
  type SnapshotScope,
} from '../../domain/ports.js';

export { ConfigError };
import { ClusterConfigSchema, type ClusterConfig, type ClusterSnapshot, type Instance, type Node } from '../../domain/types.js';
import { JsonFileStore } from '../common/json-file.js';

export interface FileConfigStoreOptions {
  /**
   * Tells whether the operation owning a reservation still runs. Reservations of finished
   * operations (e.g. terminated workflows, which run no cleanup) are dropped when seen.
   */
  isOperationRunning?: (workflowId: string, runId: string) => Promise<boolean>;
}

export const configPath = (home: string): string => join(home, 'config.json');

export class FileConfigStore implements ConfigStore {
  readonly file: JsonFileStore<ClusterConfig>;
  constructor(
    path: string,
    private readonly opts: FileConfigStoreOptions = {},
  ) {
    this.file = new JsonFileStore(path, { parse: (raw) => ClusterConfigSchema.parse(raw), durable: true });
  }

  static forHome(home: string, opts?: FileConfigStoreOptions): FileConfigStore {
    return new FileConfigStore(configPath(home), opts);
  }

  exists(): boolean {
    return this.file.exists();
  }

  async initialise(doc: ClusterConfig): Promise<void> {
    await this.file.write(ClusterConfigSchema.parse(doc));
  }

  async config(): Promise<ClusterConfig> {
    return this.file.read();
  }

  async snapshot(scope: SnapshotScope = {}): Promise<ClusterSnapshot> {
    const { reservations: _ignored, leases: _leases, ...snap } = this.file.read();
    let instances = pick(snap.instances, scope.instances);
    const on = scope.primaryOn;
    if (on !== undefined) instances = Object.fromEntries(Object.entries(instances).filter(([, i]) => i.primaryNode === on));
    return { ...snap, nodes: pick(snap.nodes, scope.nodes), instances };
  }

  async reservedMemory(exceptOpId?: string): Promise<Record<string, number>> {
    const cfg = this.file.read();
    const out: Record<string, number> = {};
    for (const [id, r] of Object.entries(cfg.reservations)) {
      if (id !== exceptOpId) out[r.node] = (out[r.node] ?? 0) + r.memory;
    }
    return out;
  }

  async reserveMemory(req: ReserveMemoryRequest): Promise<{ free: number; reserved: number }> {
    const dead = await this.deadReservations(req.opId);
    return this.file.update((cfg) => {
      for (const id of dead) delete cfg.reservations[id];
      let others = 0;
      for (const [id, r] of Object.entries(cfg.reservations)) {
        if (id !== req.opId && r.node === req.node) others += r.memory;
      }
      const free = Math.max(0, req.reportedFree - others);
      if (req.needed > free) {
        delete cfg.reservations[req.opId];
        return { free, reserved: 0 };
      }
      const reserved = Math.min(req.wanted, free);
      cfg.reservations[req.opId] = {
        node: req.node,
        memory: reserved,
        instance: req.instance,
        workflowId: req.workflowId,
        runId: req.runId,
      };
      return { free, reserved };
    });
  }

  /** Drops the reservations of operations that no longer run (e.g. terminated workflows). */
  async pruneReservations(): Promise<string[]> {
    const dead = await this.deadReservations('');
    if (dead.length) await this.file.update((cfg) => dead.forEach((id) => delete cfg.reservations[id]));
    return dead;
  }

  async releaseReservation(opId: string): Promise<void> {
    if (!(opId in this.file.read().reservations)) return;
    await this.file.update((cfg) => void delete cfg.reservations[opId]);
  }

  async acquireSlot(req: SlotRequest): Promise<SlotAnswer> {
    const dead = await this.deadHolders(this.file.read().leases, req.id, `${req.workflowId}@${req.runId}`);
    return this.file.update((cfg): SlotAnswer => {
      for (const id of dead) delete cfg.leases[id];
      if (cfg.leases[req.id]) return { granted: true };
      const others = Object.values(cfg.leases);
      const { maxConcurrent, maxOutgoing, maxIncoming } = req.limits;
      if (others.length >= maxConcurrent) {
        return {
          granted: false,
          limit: 'cluster',
          reason: `${others.length} evacuation migrations run in the cluster (at most ${maxConcurrent})`,
        };
      }
      const out = others.filter((l) => l.source === req.source).length;
      if (out >= maxOutgoing) {
        return { granted: false, limit: 'source', reason: `${out} leave ${req.source} (at most ${maxOutgoing})` };
      }
      const inc = req.target === null ? 0 : others.filter((l) => l.target === req.target).length;
      if (inc >= maxIncoming) {
        return { granted: false, limit: 'target', reason: `${inc} arrive on ${req.target} (at most ${maxIncoming})` };
      }
      cfg.leases[req.id] = { workflowId: req.workflowId, runId: req.runId, instance: req.instance, source: req.source, target: req.target };
      return { granted: true };
    });
  }

  async releaseSlot(id: string): Promise<void> {
    if (!(id in this.file.read().leases)) return;
    await this.file.update((cfg) => void delete cfg.leases[id]);
  }

  async setInstancePrimary(instance: string, expected: string, newPrimary: string): Promise<Instance> {
    return this.file.update((cfg) => {
      const inst = getInstance(cfg, instance);
      if (inst.primaryNode === newPrimary) return inst;
      if (inst.primaryNode !== expected) {
        throw new ConfigError(
          `instance ${instance}: primary is ${inst.primaryNode}, expected ${expected} (configuration changed underneath)`,
          'conflict',
        );
      }
      if (!cfg.nodes[newPrimary]) throw new ConfigError(`Node '${newPrimary}' not known`, 'not-found');
      inst.primaryNode = newPrimary;
      cfg.serial++;
      return inst;
    });
  }

  async setDisksActive(instance: string, active: boolean): Promise<Instance> {
    return this.file.update((cfg) => {
      const inst = getInstance(cfg, instance);
      if (inst.disksActive !== active) {
        inst.disksActive = active;
        cfg.serial++;
      }
      return inst;
    });
  }

  async modifyNode(node: string, change: Partial<Pick<Node, 'offline' | 'drained'>>): Promise<Node> {
    return this.file.update((cfg) => {
      const n = cfg.nodes[node];
      if (!n) throw new ConfigError(`Node '${node}' not known`, 'not-found');
      if (change.offline && node === cfg.cluster.masterNode) {
        throw new ConfigError(`The master node ${node} cannot be marked offline`, 'invalid');
      }
      Object.assign(n, change);
      cfg.serial++;
      return n;
    });
  }

  async modifyInstance(instance: string, change: Partial<Pick<Instance, 'adminState'>>): Promise<Instance> {
    return this.file.update((cfg) => {
      const inst = getInstance(cfg, instance);
      Object.assign(inst, change);
      cfg.serial++;
      return inst;
    });
  }

  private async deadReservations(exceptOpId: string): Promise<string[]> {
    return this.deadHolders(this.file.read().reservations, exceptOpId);
  }

  /** The entries whose holding run no longer runs (kept when that cannot be told). */
  private async deadHolders(
    entries: Record<string, { workflowId: string; runId: string }>,
    exceptId: string,
    /** A run known to be running (the requester). */
    alive?: string,
  ): Promise<string[]> {
    const check = this.opts.isOperationRunning;
    if (!check) return [];
    const dead: string[] = [];
    const seen = new Map<string, boolean>(alive ? [[alive, true]] : []);
    for (const [id, r] of Object.entries(entries)) {
      if (id === exceptId) continue;
      const key = `${r.workflowId}@${r.runId}`;
      try {
        // One node operation holds several leases: ask about each run once.
        if (!seen.has(key)) seen.set(key, await check(r.workflowId, r.runId));
        if (!seen.get(key)) dead.push(id);
      } catch {
        // cannot tell: keep the entry (conservative)
      }
    }
    return dead;
  }
}

function pick<T>(all: Record<string, T>, names: string[] | undefined): Record<string, T> {
  if (!names) return all;
  const out: Record<string, T> = {};
  for (const n of names) if (Object.hasOwn(all, n)) out[n] = all[n] as T;
  return out;
}

function getInstance(cfg: ClusterConfig, name: string): Instance {
  const inst = cfg.instances[name];
  if (!inst) throw new ConfigError(`Instance '${name}' not known`, 'not-found');
  return inst;
}
