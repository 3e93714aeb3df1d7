/**
 * What an executing operation works with: the operation's state, the node RPC client, the
 * configuration activities, the snapshot, and the instance as the configuration has it now.
 *
 * Read-only from the outside: the instance changes only through the two configuration writes below
 * (the commit points), and a different target (cleanup adopting a copy found elsewhere) is a new
 * `Exec`, not an edit of this one.
 */
import { patched } from '@temporalio/workflow';
import type { OrchestratorActivities } from '../activities/index.js';
import { rpcInstanceFor, type RpcInstance } from '../domain/instance.js';
import type { ClusterSnapshot, Instance } from '../domain/types.js';
import { execFailure, type Operation } from './operation.js';
import { failMsg, type NodeRpcClient } from './rpc.js';

export interface ExecInit {
  /** Releases the operation's target-memory reservation (idempotent; never throws). */
  releaseReservation?: () => Promise<void>;
  op: Operation;
  rpc: NodeRpcClient;
  cfg: OrchestratorActivities;
  snap: ClusterSnapshot;
  inst: Instance;
  source: string;
  target: string;
}

export class Exec {
  readonly op: Operation;
  readonly rpc: NodeRpcClient;
  readonly cfg: OrchestratorActivities;
  readonly snap: ClusterSnapshot;
  readonly source: string;
  readonly target: string;
  #inst: Instance;
  readonly #init: ExecInit;

  constructor(init: ExecInit) {
    this.#init = init;
    this.op = init.op;
    this.rpc = init.rpc;
    this.cfg = init.cfg;
    this.snap = init.snap;
    this.source = init.source;
    this.target = init.target;
    this.#inst = init.inst;
  }

  /** The instance as the configuration has it now. */
  get inst(): Instance {
    return this.#inst;
  }

  /** The same execution with another target node. */
  withTarget(target: string): Exec {
    return new Exec({ ...this.#init, inst: this.#inst, target });
  }

  /**
   * Past the commit point the target holds the instance: its memory is no longer a reservation
   * (released here, not after the final resync and the post-hooks).
   */
  async releaseReservation(): Promise<void> {
    if (this.#init.releaseReservation && patched('release-reservation-after-commit')) await this.#init.releaseReservation();
  }

  /** The commit point: primary := `primary` (compare-and-set against `expected`; idempotent). */
  async setPrimary(expected: string, primary: string): Promise<void> {
    try {
      this.#inst = await this.cfg.setInstancePrimary({ instance: this.#inst.name, expected, primary });
    } catch (e) {
      throw execFailure(`Could not update the configuration (primary := ${primary}): ${failMsg(e)}`);
    }
  }

  /** Ganeti's `admin_state` (MarkInstanceUp / MarkInstanceDown). */
  async setAdminState(state: 'up' | 'down'): Promise<void> {
    try {
      this.#inst = await this.cfg.setAdminState({ instance: this.#inst.name, state });
    } catch (e) {
      throw execFailure(`Could not update the configuration (admin_state := ${state}): ${failMsg(e)}`);
    }
  }

  /** Ganeti's `disks_active` flag. */
  async setDisksActive(active: boolean): Promise<void> {
    try {
      this.#inst = await this.cfg.setDisksActive({ instance: this.#inst.name, active });
    } catch (e) {
      throw execFailure(`Could not update the configuration (disks_active := ${active}): ${failMsg(e)}`);
    }
  }
}

/** The instance as `node`'s RPCs see it. */
export const ri = (x: Exec, node: string): RpcInstance => rpcInstanceFor(x.snap, x.inst, node);
export const allNodes = (x: Exec): string[] => [x.source, x.target];
