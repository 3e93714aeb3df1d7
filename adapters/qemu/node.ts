/**
 * Real QEMU, driven over QMP, as a node's hypervisor port: Ganeti's KVM hypervisor side. The storage
 * port (block devices, DRBD, bridges) is another object; worker/backends.ts composes the two per
 * node (`composeNode`), and a `QemuNode` is that composition.
 *
 * - Hypervisor RPCs (node_info, instance_*, migration_info, accept, migrate, status, finalize,
 *   balloon, shutdown, start, migration control) act on real qemu-system-x86_64 processes, one per
 *   instance and node (info.ts, migration.ts, migration-status.ts, lifecycle.ts, in the RPC frame of
 *   frame.ts; the state files in files.ts).
 * - The process state lives on this node only, in its state files. The driver reads its node's facts
 *   from its `NodeHost` and asks the storage side beside it (`StorageSide`) whether disks can be
 *   opened; it reports what it observed to that side, which records it if it wants (the simulated
 *   storage does, for `sim status`, the invariant checker and chaos checks). It never reads or
 *   writes the simulator's hardware document itself.
 * - As `DiskHolders` it tells the storage side whether a live process holds an instance's disks open.
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
  DiskHolders,
  HvAcceptSettings,
  HvMigrationSettings,
  MigrationControl,
  MigrationStatusPayload,
  MigrationTarget,
  NodeHypervisor,
  NodeStorage,
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

/** A QEMU node as composed (worker/backends.ts): the hypervisor's RPCs and accessors, the storage side's RPCs. */
export type QemuNode = QemuHypervisor & NodeStorage;

export class QemuHypervisor implements NodeHypervisor, DiskHolders {
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

  /** Whether a live process of the instance holds its disks open (asked by the storage side). */
  withHolders<R>(name: string, step: (held: () => boolean) => Promise<R>): Promise<R> {
    return this.f.withHolders(name, step);
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
}
