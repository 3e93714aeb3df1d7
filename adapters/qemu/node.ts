/**
 * A node whose hypervisor is real QEMU, driven over QMP: Ganeti's KVM hypervisor side as a
 * `NodeRpc`, composed with a storage side it does not own.
 *
 * - Hypervisor RPCs (node_info, instance_*, migration_info, accept, migrate, status, finalize,
 *   balloon, shutdown, start, migration control) act on real qemu-system-x86_64 processes, one per
 *   instance and node (info.ts, migration.ts, migration-status.ts, lifecycle.ts, in the RPC frame of
 *   frame.ts).
 * - Block-device and DRBD RPCs, and bridges_exist, are the injected storage side's (the simulated
 *   node: there is no DRBD on a test machine, and NICs are not attached).
 * - Every hypervisor RPC records what it observed of the real process in the injected hardware
 *   mirror (the simulator's hardware document), so that the storage side's checks ("device held
 *   open"), `sim status` and the invariant checker see the truth.
 *
 * Crash safety: nothing essential lives in memory. Per instance the node keeps a metadata file
 * (`<state dir>/<node>/<instance>.json`: pid, start time, monitor socket, command line, runtime,
 * incoming port, migration target; files.ts), written *before* each step that creates something, so
 * a retried RPC after a node-agent crash re-attaches to the process (recognised by pid + start time
 * + its unique monitor socket on the command line) instead of starting anew. QEMU runs detached in
 * its own process group and outlives the agent.
 */
import type { RpcInstance } from '../../domain/instance.js';
import type {
  BlockdevStatus,
  HvAcceptSettings,
  HvMigrationSettings,
  MigrationControl,
  MigrationStatusPayload,
  MigrationTarget,
  NodeRpc,
  WaitSyncPayload,
} from '../../domain/ports.js';
import type { InstanceInfoPayload, NodeInfoPayload } from '../../domain/prereq.js';
import type { Located, QemuMeta } from './files.js';
import { QemuFrame, type QemuNodeDeps, type QemuNodeOptions } from './frame.js';
import { instanceInfo, instanceList, instanceMigratable, migrationInfo, nodeInfo } from './info.js';
import { instanceBalloonMemory, instanceShutdown, instanceStart } from './lifecycle.js';
import { acceptInstance, instanceFinalizeMigrationDst, instanceFinalizeMigrationSrc, instanceMigrate } from './migration.js';
import { instanceGetMigrationStatus, instanceMigrationControl, instanceWaitMigrationEvent } from './migration-status.js';
import type { Accel } from './runtime.js';

export type { QemuNodeDeps, QemuNodeOptions } from './frame.js';

export class QemuNode implements NodeRpc {
  private readonly f: QemuFrame;

  constructor(
    readonly opts: QemuNodeOptions,
    deps: QemuNodeDeps,
  ) {
    this.f = new QemuFrame(opts, deps);
  }

  get node(): string {
    return this.f.node;
  }

  /** The node's state directory (`<state dir>/<node>`). */
  get dir(): string {
    return this.f.files.dir;
  }

  get accel(): Accel {
    return this.f.accel;
  }

  get binary(): string {
    return this.f.binary;
  }

  get sharedDir(): string {
    return this.f.sharedDir;
  }

  /** Stops the watch (processes keep running). */
  close(): void {
    this.f.close();
  }

  // ---- state files --------------------------------------------------------------------------

  metaPath(name: string): string {
    return this.f.files.metaPath(name);
  }

  qmpPath(name: string): string {
    return this.f.files.qmpPath(name);
  }

  logPath(name: string): string {
    return this.f.files.logPath(name);
  }

  /** QMP commands sent to the instance's process, with their errors (read by operators and tests). */
  journalPath(name: string): string {
    return this.f.files.journalPath(name);
  }

  readMeta(name: string): QemuMeta | null {
    return this.f.files.readMeta(name);
  }

  metaNames(): string[] {
    return this.f.files.metaNames();
  }

  /** The instance's live process, if any (re-found by its socket when the pid was never recorded). */
  locate(name: string): Located | null {
    return this.f.files.locate(name);
  }

  // ---- node and instance information ---------------------------------------------------------

  nodeInfo(): Promise<NodeInfoPayload> {
    return nodeInfo(this.f);
  }

  instanceList(): Promise<string[]> {
    return instanceList(this.f);
  }

  instanceInfo(inst: RpcInstance): Promise<InstanceInfoPayload | null> {
    return instanceInfo(this.f, inst);
  }

  instanceMigratable(inst: RpcInstance): Promise<void> {
    return instanceMigratable(this.f, inst);
  }

  migrationInfo(inst: RpcInstance): Promise<string> {
    return migrationInfo(this.f, inst);
  }

  // ---- migration ------------------------------------------------------------------------------

  acceptInstance(inst: RpcInstance, migrationInfo: string, targetIp: string, settings?: HvAcceptSettings): Promise<{ port: number }> {
    return acceptInstance(this.f, inst, migrationInfo, targetIp, settings);
  }

  instanceMigrate(inst: RpcInstance, target: MigrationTarget, live: boolean, settings?: HvMigrationSettings): Promise<void> {
    return instanceMigrate(this.f, inst, target, live, settings);
  }

  instanceMigrationControl(inst: RpcInstance, control: MigrationControl): Promise<MigrationStatusPayload> {
    return instanceMigrationControl(this.f, inst, control);
  }

  instanceWaitMigrationEvent(inst: RpcInstance, timeoutMs: number): Promise<MigrationStatusPayload> {
    return instanceWaitMigrationEvent(this.f, inst, timeoutMs);
  }

  instanceGetMigrationStatus(inst: RpcInstance): Promise<MigrationStatusPayload> {
    return instanceGetMigrationStatus(this.f, inst);
  }

  instanceFinalizeMigrationDst(inst: RpcInstance, migrationInfo: string, success: boolean): Promise<void> {
    return instanceFinalizeMigrationDst(this.f, inst, migrationInfo, success);
  }

  instanceFinalizeMigrationSrc(inst: RpcInstance, success: boolean, live: boolean): Promise<void> {
    return instanceFinalizeMigrationSrc(this.f, inst, success, live);
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  instanceBalloonMemory(inst: RpcInstance, memory: number): Promise<void> {
    return instanceBalloonMemory(this.f, inst, memory);
  }

  instanceShutdown(inst: RpcInstance, timeoutSec: number, reason: string): Promise<void> {
    return instanceShutdown(this.f, inst, timeoutSec, reason);
  }

  instanceStart(inst: RpcInstance, reason: string): Promise<void> {
    return instanceStart(this.f, inst, reason);
  }

  // ---- the storage side, after the mirror caught up -------------------------------------------

  bridgesExist(bridges: string[]): Promise<void> {
    return this.f.storage.bridgesExist(bridges);
  }

  blockdevFind(inst: RpcInstance, diskIndex: number): Promise<BlockdevStatus | null> {
    return this.f.storage.blockdevFind(inst, diskIndex);
  }

  async blockdevClose(inst: RpcInstance): Promise<void> {
    await this.f.reapIfDead(inst.name);
    return this.f.storage.blockdevClose(inst);
  }

  blockdevOpen(inst: RpcInstance, exclusive: boolean): Promise<void> {
    return this.f.storage.blockdevOpen(inst, exclusive);
  }

  async blockdevShutdown(inst: RpcInstance): Promise<void> {
    await this.f.reapIfDead(inst.name);
    return this.f.storage.blockdevShutdown(inst);
  }

  blockdevAssemble(inst: RpcInstance, asPrimary: boolean): Promise<void> {
    return this.f.storage.blockdevAssemble(inst, asPrimary);
  }

  drbdDisconnectNet(inst: RpcInstance): Promise<void> {
    return this.f.storage.drbdDisconnectNet(inst);
  }

  drbdAttachNet(inst: RpcInstance, multimaster: boolean): Promise<void> {
    return this.f.storage.drbdAttachNet(inst, multimaster);
  }

  drbdWaitSync(inst: RpcInstance): Promise<WaitSyncPayload> {
    return this.f.storage.drbdWaitSync(inst);
  }
}
