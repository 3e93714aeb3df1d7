/**
 * One simulated node's RPC surface (the node daemon). Each RPC is a read-modify-write of the shared
 * hardware document under its lock, so it is atomic; each is idempotent: repeated, it observes the
 * state it already produced and succeeds without doing anything twice. Failures are the messages a
 * Ganeti node would report. Node-side waits (DRBD attach/disconnect/sync polls) are Ganeti's, divided
 * by the simulation's time factor.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RpcDisk, RpcInstance } from '../../domain/instance.js';
import {
  NodeRpcError,
  type BlockdevStatus,
  type MigrationStatusPayload,
  type MigrationTarget,
  type NodeRpc,
  type WaitSyncPayload,
} from '../../domain/ports.js';
import { runningCopyRefusal, staleCopyRefusal } from '../../domain/naming.js';
import type { InstanceInfoPayload, NodeInfoPayload } from '../../domain/prereq.js';
import { SimHardware } from './hardware.js';
import {
  connectionState,
  dropLink,
  handshake,
  isConnected,
  migrationProgress,
  peerOf,
  resyncPercent,
  type SimDrbd,
  type SimNodeHw,
  type SimState,
} from './state.js';

const fail = (msg: string): never => {
  throw new NodeRpcError(msg);
};

/** The runtime description Ganeti's KVM keeps per instance (here: JSON of the RPC instance). */
export function serializeRuntime(inst: RpcInstance, memory = inst.memory): string {
  return JSON.stringify({ name: inst.name, uuid: inst.uuid, memory, vcpus: inst.vcpus, hvparams: inst.hvparams, disks: inst.disks.length });
}

export class SimNode implements NodeRpc {
  constructor(
    readonly hw: SimHardware,
    readonly node: string,
  ) {}

  // ---- plumbing -------------------------------------------------------------------------------

  private hwNode(s: SimState): SimNodeHw {
    const n = s.nodes[this.node];
    if (!n) return fail(`node ${this.node} has no simulated hardware`);
    if (n.powered === false) throw new NodeRpcError(`node ${this.node} does not answer (powered off)`, true);
    return n;
  }

  /** Runs one RPC step atomically and records it in the RPC log. */
  private async rpc<R>(
    rpc: string,
    instance: string | undefined,
    detail: string | undefined,
    fn: (s: SimState, n: SimNodeHw, now: number) => R,
  ): Promise<R> {
    const base = { node: this.node, rpc, ...(instance ? { instance } : {}), ...(detail ? { detail } : {}) };
    try {
      return await this.hw.mutate((s, now) => {
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
  private async pause(ms: number, factor: number): Promise<void> {
    await sleep(Math.max(5, ms / factor));
  }

  private scaledDeadline(ms: number, factor: number): number {
    return Date.now() + ms / factor;
  }

  private drbdDev(n: SimNodeHw, inst: RpcInstance, d: RpcDisk): SimDrbd {
    if (!d.drbd) return fail(`disk ${d.index} of ${inst.name} has no DRBD minor on node ${this.node}`);
    const dev = n.drbd[String(d.drbd.minor)];
    if (!dev || dev.instance !== inst.name) return fail(`Can't find device drbd${d.drbd.minor} (disk ${d.index} of ${inst.name})`);
    return dev;
  }

  private attachedDev(n: SimNodeHw, inst: RpcInstance, d: RpcDisk): SimDrbd {
    const dev = this.drbdDev(n, inst, d);
    if (!dev.attached) return fail(`drbd${d.drbd?.minor}: device is not assembled on ${this.node}`);
    return dev;
  }

  private isDrbd(inst: RpcInstance): boolean {
    return inst.disks.some((d) => d.template === 'drbd');
  }

  // ---- node and instance information ---------------------------------------------------------

  async nodeInfo(): Promise<NodeInfoPayload> {
    return this.rpc('node_info', undefined, undefined, (s, n) => {
      const used = Object.values(n.processes).reduce((a, p) => a + p.memory, 0);
      return {
        memoryTotal: n.memoryTotal,
        memoryDom0: s.params.dom0Memory,
        memoryFree: Math.max(0, n.memoryTotal - s.params.dom0Memory - used),
        hvVersion: n.hvVersion,
      };
    });
  }

  async instanceList(): Promise<string[]> {
    return this.rpc('instance_list', undefined, undefined, (_s, n) => Object.keys(n.processes).sort());
  }

  async instanceInfo(inst: RpcInstance): Promise<InstanceInfoPayload | null> {
    return this.rpc('instance_info', inst.name, undefined, (_s, n) => {
      const p = n.processes[inst.name];
      return p ? { state: p.state, memory: p.memory, vcpus: p.vcpus } : null;
    });
  }

  async bridgesExist(bridges: string[]): Promise<void> {
    return this.rpc('bridges_exist', undefined, bridges.join(','), (_s, n) => {
      const missing = bridges.filter((b) => !n.bridges.includes(b));
      if (missing.length) fail(`Missing bridges ${missing.join(', ')}`);
    });
  }

  async instanceMigratable(inst: RpcInstance): Promise<void> {
    return this.rpc('instance_migratable', inst.name, undefined, (_s, n) => {
      const p = n.processes[inst.name];
      if (!p || p.state === 'incoming') fail(`Instance ${inst.name} is not running`);
    });
  }

  async migrationInfo(inst: RpcInstance): Promise<string> {
    return this.rpc('migration_info', inst.name, undefined, (_s, n) => {
      const p = n.processes[inst.name];
      if (!p || p.state === 'incoming') return fail(`Failed to fetch migration information: instance ${inst.name} is not running`);
      return p.runtime;
    });
  }

  // ---- migration ------------------------------------------------------------------------------

  async acceptInstance(inst: RpcInstance, migrationInfo: string, targetIp: string): Promise<{ port: number }> {
    return this.rpc('accept_instance', inst.name, targetIp, (s, n) => {
      const existing = n.processes[inst.name];
      if (existing) {
        if (existing.state === 'incoming' && existing.incoming) return { port: existing.incoming.port };
        return fail(`Failed to accept instance: instance ${inst.name} is already running on ${this.node}`);
      }
      if (targetIp !== n.secondaryIp) return fail(`Failed to accept instance: cannot listen on ${targetIp}: address not on this node`);
      for (const d of inst.disks) {
        if (d.template === 'drbd') {
          const dev = this.attachedDev(n, inst, d);
          if (dev.role !== 'Primary')
            fail(`Failed to accept instance: cannot open disk ${d.index}: drbd${d.drbd?.minor} is Secondary (Wrong medium type)`);
        } else if (!n.shared[d.uuid]) {
          fail(`Failed to accept instance: cannot open disk ${d.index}: not opened on ${this.node}`);
        }
      }
      let runtime: { memory?: number };
      try {
        runtime = JSON.parse(migrationInfo) as { memory?: number };
      } catch {
        return fail('Failed to accept instance: cannot parse the migration information');
      }
      const memory = runtime.memory ?? inst.memory;
      const used = Object.values(n.processes).reduce((a, p) => a + p.memory, 0);
      const free = n.memoryTotal - s.params.dom0Memory - used;
      if (memory > free) return fail(`Failed to accept instance: not enough memory on ${this.node} (need ${memory} MiB, free ${free} MiB)`);
      const taken = new Set(Object.values(n.processes).map((p) => p.incoming?.port));
      let port = s.params.migrationBasePort;
      while (taken.has(port)) port++;
      n.processes[inst.name] = {
        state: 'incoming',
        memory,
        vcpus: inst.vcpus,
        runtime: migrationInfo,
        incoming: { port },
        dirtyRate: s.params.guestDirtyRate,
      };
      return { port };
    });
  }

  async instanceMigrate(inst: RpcInstance, target: MigrationTarget, live: boolean): Promise<void> {
    return this.rpc('instance_migrate', inst.name, `${target.node}:${target.port} ${live ? 'live' : 'non-live'}`, (s, n, now) => {
      const p = n.processes[inst.name];
      if (!p || p.state === 'incoming') return fail('Failed to migrate instance: Instance not running, cannot migrate');
      const m = p.migration;
      if (m && (m.status === 'active' || m.status === 'completed')) {
        if (m.targetNode === target.node && m.port === target.port) return; // already under way: re-attach
        return fail("Failed to migrate instance: Can't migrate the vm that was paused due to previous migration");
      }
      if (!live) {
        p.state = 'paused';
        p.pausedBy = 'stop';
      }
      p.migration = {
        targetNode: target.node,
        targetIp: target.ip,
        port: target.port,
        live,
        startedAt: now,
        ram: p.memory,
        bandwidth: inst.hvparams.migration_bandwidth,
        dirtyRate: p.dirtyRate,
        status: 'active',
      };
      const dstNode = s.nodes[target.node];
      const dst = dstNode?.processes[inst.name];
      if (!dstNode || dstNode.secondaryIp !== target.ip || dst?.state !== 'incoming' || dst.incoming?.port !== target.port) {
        p.migration.status = 'failed';
        p.migration.endedAt = now;
        p.migration.error = 'Failed to connect socket: Connection refused';
      }
    });
  }

  async instanceGetMigrationStatus(inst: RpcInstance): Promise<MigrationStatusPayload> {
    return this.rpc('instance_get_migration_status', inst.name, undefined, (_s, n, now) => {
      const p = n.processes[inst.name];
      if (!p) return fail(`Instance ${inst.name} is not running on ${this.node}`);
      const m = p.migration;
      if (!m) return { status: 'none' };
      const { transferred } = migrationProgress(m, m.endedAt ?? now);
      const out: MigrationStatusPayload = { status: m.status, transferredRam: Math.round(transferred), totalRam: m.ram };
      if (m.error) out.error = m.error;
      return out;
    });
  }

  async instanceFinalizeMigrationDst(inst: RpcInstance, migrationInfo: string, success: boolean): Promise<void> {
    return this.rpc('instance_finalize_migration_dst', inst.name, success ? 'success' : 'failure', (_s, n) => {
      const p = n.processes[inst.name];
      if (!success) {
        // Force-stop the incoming process, if any — never a copy that holds the complete state.
        if (p && p.state !== 'incoming') {
          return fail(`Failed to finalize migration on the target node: ${runningCopyRefusal(inst.name, p.state)}`);
        }
        delete n.processes[inst.name];
        return;
      }
      if (!p) return fail(`Failed to finalize migration on the target node: instance ${inst.name} is not running on ${this.node}`);
      if (p.state === 'incoming') {
        return fail(`Failed to finalize migration on the target node: instance ${inst.name} did not become running (status inmigrate)`);
      }
      if (p.state === 'paused') {
        p.state = 'running'; // `cont`: a non-live migration leaves the destination paused
        delete p.pausedBy;
      }
      p.runtime = migrationInfo;
    });
  }

  async instanceFinalizeMigrationSrc(inst: RpcInstance, success: boolean, _live: boolean): Promise<void> {
    return this.rpc('instance_finalize_migration_src', inst.name, success ? 'success' : 'failure', (_s, n, now) => {
      const p = n.processes[inst.name];
      if (!p) return; // already gone: nothing left to finalize
      if (success) {
        if (p.migration?.status !== 'completed') {
          return fail(
            `Failed to finalize the migration on the source node: migration is ${p.migration?.status ?? 'not running'}, refusing to stop the source`,
          );
        }
        delete n.processes[inst.name];
        delete n.links[inst.name];
        return;
      }
      if (p.migration?.status === 'completed' || p.pausedBy === 'postmigrate') {
        return fail(`Failed to finalize the migration on the source node: ${staleCopyRefusal(inst.name)}`);
      }
      if (p.migration?.status === 'active') {
        p.migration.status = 'cancelled';
        p.migration.endedAt = now;
      }
      if (p.state === 'paused') {
        p.state = 'running'; // `cont`
        delete p.pausedBy;
      }
      delete p.migration;
    });
  }

  async instanceBalloonMemory(inst: RpcInstance, memory: number): Promise<void> {
    return this.rpc('instance_balloon_memory', inst.name, String(memory), (_s, n) => {
      const p = n.processes[inst.name];
      if (!p || p.state === 'incoming') return fail(`Cannot balloon instance ${inst.name}: not running on ${this.node}`);
      p.memory = memory;
      p.runtime = JSON.stringify({ ...(JSON.parse(p.runtime) as object), memory });
    });
  }

  /** Soft shutdown (ACPI); a guest that ignores it is killed when the timeout runs out. */
  async instanceShutdown(inst: RpcInstance, timeoutSec: number, reason: string): Promise<void> {
    const { state } = this.hw.read();
    const p = this.hwNode(state).processes[inst.name];
    let detail = reason || undefined;
    if (p?.ignoresAcpi) {
      await this.pause(timeoutSec * 1000, state.clock.factor);
      detail = `forced after ${timeoutSec} s${reason ? `; ${reason}` : ''}`;
    }
    return this.rpc('instance_shutdown', inst.name, detail, (_s, n) => {
      delete n.processes[inst.name];
      delete n.links[inst.name];
    });
  }

  async instanceStart(inst: RpcInstance, reason: string): Promise<void> {
    return this.rpc('instance_start', inst.name, reason || undefined, (s, n) => {
      const p = n.processes[inst.name];
      if (p && p.state !== 'incoming') return;
      for (const d of inst.disks) {
        if (d.template === 'drbd') {
          const dev = this.attachedDev(n, inst, d);
          if (dev.role !== 'Primary') fail(`Hypervisor error: cannot open disk ${d.index}: drbd${d.drbd?.minor} is Secondary`);
        } else if (!n.shared[d.uuid]) {
          fail(`Hypervisor error: cannot open disk ${d.index}: not opened on ${this.node}`);
        }
      }
      const used = Object.values(n.processes).reduce((a, q) => a + q.memory, 0);
      const free = n.memoryTotal - s.params.dom0Memory - used;
      if (inst.memory > free) fail(`Hypervisor error: not enough memory (need ${inst.memory} MiB, free ${free} MiB)`);
      n.processes[inst.name] = {
        state: 'running',
        memory: inst.memory,
        vcpus: inst.vcpus,
        runtime: serializeRuntime(inst),
        dirtyRate: s.params.guestDirtyRate,
      };
      n.links[inst.name] = true;
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
    return this.rpc('blockdev_close', inst.name, undefined, (_s, n) => {
      for (const d of inst.disks) {
        if (d.template === 'drbd') {
          const dev = this.attachedDev(n, inst, d);
          if (dev.role === 'Primary') {
            if (n.processes[inst.name]) {
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

  private promote(s: SimState, dev: SimDrbd, d: RpcDisk): void {
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
    return this.rpc('blockdev_shutdown', inst.name, undefined, (s, n, now) => {
      for (const d of inst.disks) {
        if (d.template === 'drbd') {
          const dev = this.drbdDev(n, inst, d);
          if (!dev.attached) continue;
          if (dev.role === 'Primary' && n.processes[inst.name]) {
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
    const deadline = this.scaledDeadline(120_000, this.hw.read().state.clock.factor);
    let delay = 100;
    for (;;) {
      const { state: s } = this.hw.read();
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
      const { state: s } = this.hw.read();
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
