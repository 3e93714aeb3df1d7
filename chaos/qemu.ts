/**
 * The QEMU side of a chaos run (`--backend qemu`): the instance booted for real with the heartbeat
 * guest before the agents start, and after the run the guest checked alive on its primary (the
 * heartbeat counter advances), exactly one QEMU process for the cluster, none after teardown.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { rpcInstanceFor } from '../domain/instance.js';
import { readHeartbeat } from '../adapters/qemu/guest.js';
import type { QemuNode } from '../adapters/qemu/node.js';
import { killPid, qemuProcessesMentioning } from '../adapters/qemu/process.js';
import { qemuNode } from '../worker/backends.js';
import type { CrashCluster } from './cluster.js';

export class QemuRun {
  private readonly drivers = new Map<string, QemuNode>();
  constructor(
    readonly c: CrashCluster,
    readonly kernel: string | null,
  ) {}

  driver(node: string): QemuNode {
    let d = this.drivers.get(node);
    if (!d) {
      d = qemuNode({ home: this.c.home, node, kernel: this.kernel, accel: 'tcg', watchMs: 0 });
      this.drivers.set(node, d);
    }
    return d;
  }

  /** Boots the instance on its primary if it is marked up (the hardware document already has its disks). */
  async boot(instance: string): Promise<void> {
    const cfg = this.c.cfg();
    const inst = cfg.instances[instance]!;
    if (inst.adminState !== 'up') return;
    await this.driver(inst.primaryNode).instanceStart(rpcInstanceFor(cfg, inst, inst.primaryNode), 'chaos boot');
  }

  /** The guest runs on its primary (heartbeat advancing) and nowhere else; nothing runs if marked down. */
  async check(instance: string): Promise<string[]> {
    const v: string[] = [];
    const inst = this.c.instance(instance);
    const procs = qemuProcessesMentioning(this.c.home);
    const expected = inst.adminState === 'up' ? 1 : 0;
    if (procs.length !== expected) v.push(`${procs.length} QEMU processes for the cluster, expected ${expected}`);
    if (inst.adminState !== 'up') return v;
    try {
      const qmp = this.driver(inst.primaryNode).qmpPath(instance);
      const a = await readHeartbeat(qmp);
      await sleep(300);
      const b = await readHeartbeat(qmp);
      if (!b.booted) v.push(`the guest on ${inst.primaryNode} has not booted`);
      else if (b.counter <= a.counter) v.push(`the guest on ${inst.primaryNode} is not running (heartbeat stuck at ${b.counter})`);
    } catch (e) {
      v.push(`the guest on ${inst.primaryNode} cannot be read: ${(e as Error).message}`);
    }
    return v;
  }

  /** Kills every QEMU of the cluster by pid; a violation if one survives. */
  async teardown(): Promise<string[]> {
    for (const pid of qemuProcessesMentioning(this.c.home)) await killPid(pid);
    const left = qemuProcessesMentioning(this.c.home);
    return left.length ? [`QEMU processes survive the teardown: ${left.join(', ')}`] : [];
  }
}
