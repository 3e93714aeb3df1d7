/**
 * The cluster configuration store: one JSON document (`config.json`), written atomically and
 * durably (fsync), read-modify-write under a lock file. See docs/architecture.md for why JSON and not SQLite.
 */
import { join } from 'node:path';
import { ConfigError, type ConfigStore, type ReserveMemoryRequest } from '../../domain/ports.js';

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

  async snapshot(): Promise<ClusterSnapshot> {
    const { reservations: _ignored, ...snap } = this.file.read();
    return snap;
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
    const check = this.opts.isOperationRunning;
    if (!check) return [];
    const dead: string[] = [];
    for (const [id, r] of Object.entries(this.file.read().reservations)) {
      if (id === exceptOpId) continue;
      try {
        if (!(await check(r.workflowId, r.runId))) dead.push(id);
      } catch {
        // cannot tell: keep the reservation (conservative)
      }
    }
    return dead;
  }
}

function getInstance(cfg: ClusterConfig, name: string): Instance {
  const inst = cfg.instances[name];
  if (!inst) throw new ConfigError(`Instance '${name}' not known`, 'not-found');
  return inst;
}
