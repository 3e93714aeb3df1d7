/**
 * What Ganeti's KVM keeps per instance as its "runtime file" and ships as the migration info: the
 * device model's command line plus the instance parameters in force at start. The destination of a
 * migration starts QEMU with exactly these arguments; only the node-local parts (the monitor socket
 * and `-incoming`) are its own.
 */
import { join } from 'node:path';
import type { RpcInstance } from '../../domain/instance.js';

export type Accel = 'tcg' | 'kvm';
export const ACCELS: readonly Accel[] = ['tcg', 'kvm'];

export interface QemuRuntime {
  kind: 'qemu';
  name: string;
  uuid: string;
  /** Current memory (MiB): the balloon target; the device model's `-m` stays the start size. */
  memory: number;
  vcpus: number;
  hvparams: RpcInstance['hvparams'];
  /** Number of disks (as in the simulated runtime). */
  disks: number;
  /** The device model: everything but the monitor socket and `-incoming`. */
  args: string[];
}

export interface DeviceModelOptions {
  accel: Accel;
  /** Multiboot kernel booted with -kernel; null: firmware only (SeaBIOS halts without a boot disk). */
  kernel: string | null;
  /** Directory of sharedfile images, seen under the same path by every node. */
  sharedDir: string;
}

export function sharedImagePath(sharedDir: string, inst: RpcInstance, index: number): string {
  const d = inst.disks[index]!;
  return join(sharedDir, d.path ?? `${inst.name}/disk${index}.img`);
}

/**
 * The command line for a fresh start. DRBD disks stay simulated (the DRBD state machine lives in the
 * hardware document), so only sharedfile disks become real drives; NICs are not attached (there are
 * no bridges on a test machine). A balloon device is always present, as with Ganeti's KVM.
 */
export function deviceModelArgs(inst: RpcInstance, o: DeviceModelOptions): string[] {
  const args = [
    '-name',
    `${inst.name},debug-threads=on`,
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-machine',
    'pc',
    '-accel',
    o.accel,
    '-m',
    String(inst.memory),
    '-smp',
    String(inst.vcpus),
    '-device',
    'virtio-balloon-pci,id=balloon0',
  ];
  if (o.kernel) args.push('-kernel', o.kernel);
  inst.disks.forEach((d, i) => {
    if (d.template !== 'sharedfile' && d.template !== 'file') return;
    args.push('-drive', `file=${sharedImagePath(o.sharedDir, inst, i)},format=raw,if=none,id=disk${i}`);
    args.push('-device', `virtio-blk-pci,drive=disk${i},id=disk${i}-dev`);
  });
  return args;
}

export function newRuntime(inst: RpcInstance, o: DeviceModelOptions): QemuRuntime {
  return {
    kind: 'qemu',
    name: inst.name,
    uuid: inst.uuid,
    memory: inst.memory,
    vcpus: inst.vcpus,
    hvparams: inst.hvparams,
    disks: inst.disks.length,
    args: deviceModelArgs(inst, o),
  };
}

export function parseRuntime(text: string): QemuRuntime {
  const r = JSON.parse(text) as Partial<QemuRuntime>;
  if (r.kind !== 'qemu' || !Array.isArray(r.args) || typeof r.memory !== 'number') {
    throw new Error('not a QEMU runtime (was the instance started by another backend?)');
  }
  return r as QemuRuntime;
}

/** The monitor argument; its unique socket path is also how the driver recognises its process. */
export const qmpArg = (socket: string): string => `unix:${socket},server=on,wait=off`;
