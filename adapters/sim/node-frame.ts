/**
 * The frame of one simulated node's RPC surface (the node daemon): each RPC is a read-modify-write
 * of the shared hardware in one transaction, so it is atomic, and is recorded in the RPC log.
 * Node-side waits are Ganeti's, divided by the simulation's time factor.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RpcDisk, RpcInstance } from '../../domain/instance.js';
import { NodeRpcError } from '../../domain/ports.js';
import { SimHardware } from './hardware.js';
import type { SimDrbd, SimNodeHw, SimState } from './state.js';

export const fail = (msg: string): never => {
  throw new NodeRpcError(msg);
};

export class SimNodeFrame {
  constructor(
    readonly hw: SimHardware,
    readonly node: string,
  ) {}

  // ---- plumbing -------------------------------------------------------------------------------

  protected hwNode(s: SimState): SimNodeHw {
    const n = s.nodes[this.node];
    if (!n) return fail(`node ${this.node} has no simulated hardware`);
    if (n.powered === false) throw new NodeRpcError(`node ${this.node} does not answer (powered off)`, true);
    return n;
  }

  /**
   * Runs one RPC step atomically and records it in the RPC log. It sees this node, the nodes its
   * state involves and `also` (`SimHardware.mutateNodes`).
   */
  protected async rpc<R>(
    rpc: string,
    instance: string | undefined,
    detail: string | undefined,
    fn: (s: SimState, n: SimNodeHw, now: number) => R,
    also: readonly string[] = [],
  ): Promise<R> {
    const base = { node: this.node, rpc, ...(instance ? { instance } : {}), ...(detail ? { detail } : {}) };
    try {
      return await this.hw.mutateNodes([this.node, ...also], (s, now) => {
        const r = fn(s, this.hwNode(s), now);
        SimHardware.log(s, { ...base, outcome: 'ok' });
        return r;
      });
    } catch (e) {
      if (e instanceof NodeRpcError) await this.hw.appendLog({ ...base, outcome: 'error', error: e.message });
      throw e;
    }
  }

  /** A node-side wait of `ms` Ganeti milliseconds, at the time factor of the state just read. */
  protected async pause(ms: number, factor: number): Promise<void> {
    await sleep(Math.max(5, ms / factor));
  }

  protected scaledDeadline(ms: number, factor: number): number {
    return Date.now() + ms / factor;
  }

  protected drbdDev(n: SimNodeHw, inst: RpcInstance, d: RpcDisk): SimDrbd {
    if (!d.drbd) return fail(`disk ${d.index} of ${inst.name} has no DRBD minor on node ${this.node}`);
    const dev = n.drbd[String(d.drbd.minor)];
    if (!dev || dev.instance !== inst.name) return fail(`Can't find device drbd${d.drbd.minor} (disk ${d.index} of ${inst.name})`);
    return dev;
  }

  protected attachedDev(n: SimNodeHw, inst: RpcInstance, d: RpcDisk): SimDrbd {
    const dev = this.drbdDev(n, inst, d);
    if (!dev.attached) return fail(`drbd${d.drbd?.minor}: device is not assembled on ${this.node}`);
    return dev;
  }

  protected isDrbd(inst: RpcInstance): boolean {
    return inst.disks.some((d) => d.template === 'drbd');
  }
}
