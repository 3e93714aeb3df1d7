/**
 * One simulated node's hypervisor port (the node daemon's hypervisor side): node information, the
 * instance's process and its migration, in the hardware document's process table. The storage port
 * is `storage.ts`, the frame `node-frame.ts`; worker/backends.ts composes the two. Each RPC is a
 * read-modify-write of the shared hardware in one transaction, so it is atomic; each is idempotent:
 * repeated, it observes the state it already produced and succeeds without doing anything twice.
 * Failures are the messages a Ganeti node would report. As `DiskHolders` it tells the storage side
 * beside it whether a process holds an instance's disks open (the process table again).
 */
import type { RpcInstance } from '../../domain/instance.js';
import { runningCopyRefusal, staleCopyRefusal } from '../../domain/naming.js';
import type {
  HvAcceptSettings,
  HvMigrationSettings,
  MigrationControl,
  MigrationStatusPayload,
  DiskHolders,
  MigrationTarget,
  NodeHypervisor,
} from '../../domain/ports.js';
import type { InstanceInfoPayload, NodeInfoPayload } from '../../domain/prereq.js';
import { controlMigration, migrateDetail, migrationStatus } from './migration-control.js';
import { fail, SimNodeFrame } from './node-frame.js';

/** The runtime description Ganeti's KVM keeps per instance (here: JSON of the RPC instance). */
export function serializeRuntime(inst: RpcInstance, memory = inst.memory): string {
  return JSON.stringify({ name: inst.name, uuid: inst.uuid, memory, vcpus: inst.vcpus, hvparams: inst.hvparams, disks: inst.disks.length });
}

export class SimHypervisor extends SimNodeFrame implements NodeHypervisor, DiskHolders {
  /**
   * A process in the node's process table holds the disks open. `held()` reads the document; asked
   * inside the storage side's transaction (which holds the write lock), it sees the state that
   * transaction works on, so the check and the storage change are one atomic step.
   */
  withHolders<R>(instance: string, step: (held: () => boolean) => Promise<R>): Promise<R> {
    return step(() => !!this.hw.readNodes([this.node]).state.nodes[this.node]?.processes[instance]);
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

  async acceptInstance(inst: RpcInstance, migrationInfo: string, targetIp: string, settings?: HvAcceptSettings): Promise<{ port: number }> {
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
        incoming: settings?.postcopy ? { port, postcopy: true } : { port },
        dirtyRate: s.params.guestDirtyRate,
      };
      return { port };
    });
  }

  async instanceMigrate(inst: RpcInstance, target: MigrationTarget, live: boolean, settings?: HvMigrationSettings): Promise<void> {
    return this.rpc(
      'instance_migrate',
      inst.name,
      migrateDetail(target, live, settings),
      (s, n, now) => {
        const p = n.processes[inst.name];
        if (!p || p.state === 'incoming') return fail('Failed to migrate instance: Instance not running, cannot migrate');
        const m = p.migration;
        if (m && (m.status === 'active' || m.status === 'postcopy-active' || m.status === 'completed')) {
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
          bandwidth: settings?.bandwidth ?? inst.hvparams.migration_bandwidth,
          dirtyRate: p.dirtyRate,
          status: 'active',
          downtimeMs: settings?.downtimeMs ?? inst.hvparams.migration_downtime,
        };
        if (settings?.autoConverge) p.migration.autoConverge = true;
        if (settings?.postcopy) p.migration.postcopy = true;
        const dstNode = s.nodes[target.node];
        const dst = dstNode?.processes[inst.name];
        if (!dstNode || dstNode.secondaryIp !== target.ip || dst?.state !== 'incoming' || dst.incoming?.port !== target.port) {
          p.migration.status = 'failed';
          p.migration.endedAt = now;
          p.migration.error = 'Failed to connect socket: Connection refused';
        }
      },
      [target.node],
    );
  }

  async instanceGetMigrationStatus(inst: RpcInstance): Promise<MigrationStatusPayload> {
    return this.rpc('instance_get_migration_status', inst.name, undefined, (_s, n, now) => {
      const p = n.processes[inst.name];
      if (!p) return fail(`Instance ${inst.name} is not running on ${this.node}`);
      const m = p.migration;
      if (!m) return { status: 'none' };
      return migrationStatus(m, now);
    });
  }

  async instanceMigrationControl(inst: RpcInstance, control: MigrationControl): Promise<MigrationStatusPayload> {
    const detail = control.action === 'set-downtime' ? `set-downtime ${control.downtimeMs} ms` : control.action;
    return this.rpc('instance_migration_control', inst.name, detail, (s, n, now) => {
      const p = n.processes[inst.name];
      const m = p?.migration;
      if (!p || !m || (m.status !== 'active' && m.status !== 'postcopy-active')) {
        return fail(`Cannot change the migration of ${inst.name}: no migration of it is running on ${this.node}`);
      }
      controlMigration(s, p, m, inst.name, control, now);
      return migrationStatus(m, now);
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
    const { state } = this.hw.readNodes([this.node]);
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
}
