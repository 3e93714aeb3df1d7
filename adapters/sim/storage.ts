/**
 * A simulated node's storage port (Ganeti's bdev and DRBD RPCs, and bridges_exist): block devices
 * open/closed/assembled, DRBD roles, network configuration and resync. Every RPC is idempotent:
 * repeated, it observes the state it already produced and succeeds without doing anything twice.
 * Composed with either hypervisor (the simulated one or QEMU; worker/backends.ts).
 *
 * Whether a device is held open (blockdev_close, blockdev_shutdown) it asks the hypervisor beside it
 * (`DiskHolders`), inside its own transaction: the hypervisor starts and stops no process of the
 * instance while it asks, so the answer and the demotion are one step. As the hypervisor's
 * `StorageSide` it answers whether an instance's disks can be opened here and records what a real
 * hypervisor observed (mirror.ts), the only way a real hypervisor reaches the hardware document.
 */
import type { RpcDisk, RpcInstance } from '../../domain/instance.js';
import type { BlockdevStatus, DiskHolders, NodeStorage, ObservedReport, StorageSide, WaitSyncPayload } from '../../domain/ports.js';
import type { SimHardware } from './hardware.js';
import { recordObserved } from './mirror.js';
import { fail, SimNodeFrame } from './node-frame.js';
import {
  connectionState,
  DRBD_RECONNECT_TIMEOUT_SEC,
  dropLink,
  handshake,
  isConnected,
  peerOf,
  resyncPercent,
  type SimDrbd,
  type SimState,
} from './state.js';

export class SimStorage extends SimNodeFrame implements NodeStorage, StorageSide {
  constructor(
    hw: SimHardware,
    node: string,
    /** The hypervisor on the same node, asked whether a process holds an instance's disks open. */
    readonly holders: DiskHolders,
  ) {
    super(hw, node);
  }

  // ---- towards the hypervisor on this node (not RPCs) -----------------------------------------

  async openRefusal(inst: RpcInstance): Promise<string | null> {
    const n = this.hw.readNodes([this.node]).state.nodes[this.node];
    for (const d of inst.disks) {
      if (d.template === 'drbd') {
        const dev = d.drbd && n ? n.drbd[String(d.drbd.minor)] : undefined;
        if (!dev || dev.instance !== inst.name || !dev.attached)
          return `cannot open disk ${d.index}: drbd${d.drbd?.minor} is not assembled on ${this.node}`;
        if (dev.role !== 'Primary') return `cannot open disk ${d.index}: drbd${d.drbd?.minor} is Secondary (Wrong medium type)`;
      } else if (!n?.shared[d.uuid]) {
        return `cannot open disk ${d.index}: not opened on ${this.node}`;
      }
    }
    return null;
  }

  hypervisorObserved(report: ObservedReport): Promise<void> {
    return recordObserved(this.hw, this.node, report);
  }

  // ---- RPCs -------------------------------------------------------------------------------------

  async bridgesExist(bridges: string[]): Promise<void> {
    return this.rpc('bridges_exist', undefined, bridges.join(','), (_s, n) => {
      const missing = bridges.filter((b) => !n.bridges.includes(b));
      if (missing.length) fail(`Missing bridges ${missing.join(', ')}`);
    });
  }

  // ---- block devices --------------------------------------------------------------------------

  async blockdevFind(inst: RpcInstance, diskIndex: number): Promise<BlockdevStatus | null> {
    return this.rpc('blockdev_find', inst.name, String(diskIndex), (s, n, now) => {
      const d = inst.disks[diskIndex];
      if (!d) return fail(`instance ${inst.name} has no disk ${diskIndex}`);
      if (d.template !== 'drbd') return d.template === 'sharedfile' ? { isDegraded: false, syncPercent: null, ldisk: 'OKAY' } : null;
      const dev = d.drbd ? n.drbd[String(d.drbd.minor)] : undefined;
      if (!dev || !dev.attached || dev.instance !== inst.name) return null;
      // Ganeti: degraded = not exactly Connected (a resync counts) or the local disk not UpToDate.
      const connected = connectionState(s, dev) === 'Connected';
      return {
        isDegraded: !connected || dev.disk !== 'UpToDate',
        syncPercent: resyncPercent(dev, now),
        ldisk: !dev.net ? 'FAULTY' : dev.resync ? 'SYNC' : dev.disk === 'UpToDate' ? 'OKAY' : 'UNKNOWN',
      };
    });
  }

  async blockdevClose(inst: RpcInstance): Promise<void> {
    return this.holders.withHolders(inst.name, (held) => this.close(inst, held));
  }

  private close(inst: RpcInstance, held: () => boolean): Promise<void> {
    return this.rpc('blockdev_close', inst.name, undefined, (_s, n) => {
      for (const d of inst.disks) {
        if (d.template === 'drbd') {
          const dev = this.attachedDev(n, inst, d);
          if (dev.role === 'Primary') {
            if (held()) {
              fail(`drbd${d.drbd?.minor}: can't switch to secondary: State change failed: (-12) Device is held open by someone`);
            }
            dev.role = 'Secondary';
          }
        } else {
          delete n.shared[d.uuid];
        }
      }
      delete n.links[inst.name];
    });
  }

  async blockdevOpen(inst: RpcInstance, exclusive: boolean): Promise<void> {
    return this.rpc('blockdev_open', inst.name, exclusive ? 'exclusive' : 'shared', (s, n) => {
      for (const d of inst.disks) {
        if (d.template === 'drbd') {
          const dev = this.attachedDev(n, inst, d);
          this.promote(s, dev, d);
        } else {
          n.shared[d.uuid] = { instance: inst.name, mode: exclusive ? 'exclusive' : 'shared' };
        }
      }
      n.links[inst.name] = true;
    });
  }

  protected promote(s: SimState, dev: SimDrbd, d: RpcDisk): void {
    if (dev.role === 'Primary') return;
    const peer = peerOf(s, dev);
    const connected = isConnected(s, dev);
    if (connected && peer?.role === 'Primary' && !(dev.net?.dualPrimary && peer.net?.dualPrimary)) {
      fail(`drbd${d.drbd?.minor}: State change failed: (-1) Multiple primaries not allowed by config`);
    }
    if (dev.disk !== 'UpToDate' && !(connected && peer?.disk === 'UpToDate')) {
      fail(`drbd${d.drbd?.minor}: State change failed: (-2) Need access to UpToDate data`);
    }
    dev.role = 'Primary';
  }

  async blockdevShutdown(inst: RpcInstance): Promise<void> {
    return this.holders.withHolders(inst.name, (held) => this.shutdown(inst, held));
  }

  private shutdown(inst: RpcInstance, held: () => boolean): Promise<void> {
    return this.rpc('blockdev_shutdown', inst.name, undefined, (s, n, now) => {
      for (const d of inst.disks) {
        if (d.template === 'drbd') {
          const dev = this.drbdDev(n, inst, d);
          if (!dev.attached) continue;
          if (dev.role === 'Primary' && held()) {
            fail(`drbd${d.drbd?.minor}: can't shut down: State change failed: (-12) Device is held open by someone`);
          }
          if (dev.net) dropLink(s, dev, now);
          dev.net = null;
          dev.role = 'Secondary';
          dev.attached = false;
        } else {
          delete n.shared[d.uuid];
        }
      }
      delete n.links[inst.name];
    });
  }

  async blockdevAssemble(inst: RpcInstance, asPrimary: boolean): Promise<void> {
    return this.rpc('blockdev_assemble', inst.name, asPrimary ? 'primary' : 'secondary', (s, n, now) => {
      for (const d of inst.disks) {
        if (d.template === 'drbd') {
          const dev = this.drbdDev(n, inst, d);
          dev.attached = true;
          if (!dev.net) {
            dev.net = { dualPrimary: false };
            handshake(s, dev, now);
          }
          if (asPrimary) this.promote(s, dev, d);
        } else if (asPrimary) {
          n.shared[d.uuid] = { instance: inst.name, mode: 'exclusive' };
        }
      }
      if (asPrimary) n.links[inst.name] = true;
    });
  }

  // ---- DRBD network ---------------------------------------------------------------------------

  async drbdDisconnectNet(inst: RpcInstance): Promise<void> {
    if (!this.isDrbd(inst)) return;
    return this.rpc('drbd_disconnect_net', inst.name, undefined, (s, n, now) => {
      for (const d of inst.disks) {
        const dev = this.attachedDev(n, inst, d);
        if (dev.net) dropLink(s, dev, now);
        dev.net = null;
      }
    });
  }

  async drbdAttachNet(inst: RpcInstance, multimaster: boolean): Promise<void> {
    if (!this.isDrbd(inst)) return;
    const mode = multimaster ? 'dual-master' : 'single-master';
    const configure = (reissue: boolean) =>
      this.rpc('drbd_attach_net', inst.name, reissue ? `${mode} (re-issued)` : mode, (s, n, now) => {
        for (const d of inst.disks) {
          const dev = this.attachedDev(n, inst, d);
          if (dev.net) {
            if (dev.net.dualPrimary !== multimaster) fail(`drbd${d.drbd?.minor}: device is not standalone in AttachNet`);
            continue; // already configured as asked: a retried call re-attaches
          }
          dev.net = { dualPrimary: multimaster };
          handshake(s, dev, now);
        }
      });
    await configure(false);
    const { state: at } = this.hw.readNodes([this.node]);
    const deadline = this.scaledDeadline((at.params.reconnectTimeoutSec ?? DRBD_RECONNECT_TIMEOUT_SEC) * 1000, at.clock.factor);
    let delay = 100;
    for (;;) {
      const { state: s } = this.hw.readNodes([this.node]);
      const n = this.hwNode(s);
      const devs = inst.disks.map((d) => this.attachedDev(n, inst, d));
      if (devs.some((d) => !d.net)) {
        await configure(true); // the peer saw a mismatch and dropped to StandAlone: attach again
      } else {
        const done = devs.every((d) => {
          const conn = connectionState(s, d);
          if (!multimaster) return conn === 'Connected' || conn === 'SyncSource' || conn === 'SyncTarget';
          return conn === 'Connected' && d.disk === 'UpToDate' && peerOf(s, d)?.disk === 'UpToDate';
        });
        if (done) return;
      }
      if (Date.now() > deadline) {
        await this.hw.appendLog({
          node: this.node,
          rpc: 'drbd_attach_net',
          instance: inst.name,
          outcome: 'error',
          error: 'Timeout in disk reconnecting',
        });
        return fail('Timeout in disk reconnecting');
      }
      await this.pause(delay, s.clock.factor);
      delay = Math.min(delay * 1.5, 5000);
    }
  }

  async drbdWaitSync(inst: RpcInstance): Promise<WaitSyncPayload> {
    if (!this.isDrbd(inst)) return { allDone: true, minPercent: 100 };
    let deadline = 0;
    for (;;) {
      const { state: s } = this.hw.readNodes([this.node]);
      deadline ||= this.scaledDeadline(15_000, s.clock.factor);
      const n = this.hwNode(s);
      const devs = inst.disks.map((d) => this.attachedDev(n, inst, d));
      const states = devs.map((d) => connectionState(s, d));
      const ready = states.every((c) => c === 'Connected' || c === 'SyncSource' || c === 'SyncTarget');
      if (ready || Date.now() > deadline) {
        return this.rpc('drbd_wait_sync', inst.name, undefined, (s2, n2, now) => {
          let allDone = true;
          let minPercent = 100;
          for (const d of inst.disks) {
            const dev = this.attachedDev(n2, inst, d);
            const c = connectionState(s2, dev);
            if (c !== 'Connected' && c !== 'SyncSource' && c !== 'SyncTarget') {
              fail(`DRBD device drbd${d.drbd?.minor} is not in sync: stats=${c}, ${dev.role}, ${dev.disk}`);
            }
            if (dev.resync) allDone = false;
            const pct = resyncPercent(dev, now);
            if (pct !== null) minPercent = Math.min(minPercent, pct);
          }
          return { allDone, minPercent };
        });
      }
      await this.pause(1000, s.clock.factor);
    }
  }
}
