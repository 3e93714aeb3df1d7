/**
 * What Ganeti's KVM keeps per instance as its "runtime file" and ships as the migration info: the
 * instance parameters the device model was started with (its `-m`, vCPUs, disks) and the memory in
 * force now (the balloon target).
 *
 * The trust boundary (docs/architecture.md): the migration info arrives in an RPC payload, so the
 * target never takes a command line from it. Each node builds the device model's command line itself,
 * from the instance definition of the RPC (validated by the agent) and its own settings (accelerator,
 * kernel, shared directory); the target refuses migration info that carries a command line or that
 * does not describe the instance it was asked to accept (name, UUID, memory, vCPUs, disks).
 */
import { join } from 'node:path';
import { z } from 'zod';
import type { RpcInstance } from '../../domain/instance.js';

export type Accel = 'tcg' | 'kvm';
export const ACCELS: readonly Accel[] = ['tcg', 'kvm'];

export interface QemuRuntime {
  kind: 'qemu';
  name: string;
  uuid: string;
  /** Current memory (MiB): the balloon target; the device model's `-m` stays the start size. */
  memory: number;
  /** The device model's `-m` (MiB): the instance's memory when it was started. */
  deviceMemory: number;
  vcpus: number;
  hvparams: RpcInstance['hvparams'];
  /** Number of disks (as in the simulated runtime). */
  disks: number;
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
 * The command line for the instance on this node (a fresh start, or the destination of a migration,
 * which must match the source's device model). DRBD disks stay simulated (the DRBD state machine
 * lives in the hardware document), so only sharedfile disks become real drives; NICs are not
 * attached (there are no bridges on a test machine). A balloon device is always present, as with
 * Ganeti's KVM.
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

export function newRuntime(inst: RpcInstance): QemuRuntime {
  return {
    kind: 'qemu',
    name: inst.name,
    uuid: inst.uuid,
    memory: inst.memory,
    deviceMemory: inst.memory,
    vcpus: inst.vcpus,
    hvparams: inst.hvparams,
    disks: inst.disks.length,
  };
}

/** The `-m` of a command line (runtimes recorded before `deviceMemory` existed carried the arguments). */
function memoryArg(args: unknown): number | undefined {
  if (!Array.isArray(args)) return undefined;
  const i = args.indexOf('-m');
  const m = i >= 0 ? Number(args[i + 1]) : NaN;
  return Number.isInteger(m) && m > 0 ? m : undefined;
}

/** This node's own runtime record (metadata written by this driver), older formats included. */
export function parseRuntime(text: string): QemuRuntime {
  const r = JSON.parse(text) as Partial<QemuRuntime> & { args?: unknown };
  const deviceMemory = r.deviceMemory ?? memoryArg(r.args);
  if (r.kind !== 'qemu' || typeof r.memory !== 'number' || deviceMemory === undefined) {
    throw new Error('not a QEMU runtime (was the instance started by another backend?)');
  }
  const { args: _args, ...rest } = r;
  return { ...(rest as QemuRuntime), deviceMemory };
}

/** What this node answers `migration_info` with: its runtime, without any command line. */
export const migrationInfoOf = (rt: QemuRuntime): string => JSON.stringify(rt);

const MiB = z.number().int().positive();
/** The migration info a target accepts: exactly these keys (a command line is refused as an unknown key). */
const MigrationInfoSchema = z
  .object({
    kind: z.literal('qemu'),
    name: z.string(),
    uuid: z.string(),
    memory: MiB,
    deviceMemory: MiB,
    vcpus: z.number().int().positive(),
    hvparams: z.object({ migration_mode: z.string(), migration_bandwidth: z.number(), migration_downtime: z.number() }).strict(),
    disks: z.number().int().nonnegative(),
  })
  .strict();

/**
 * The source's migration info, checked against the instance the target was asked to accept: the
 * same name, UUID, vCPUs and disks, the device model's memory equal to the instance's, the current
 * memory within it. Throws a message saying what does not match.
 */
export function parseMigrationInfo(text: string, inst: RpcInstance): QemuRuntime {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error('not JSON');
  }
  if (!raw || typeof raw !== 'object' || (raw as { kind?: unknown }).kind !== 'qemu') {
    throw new Error('not a QEMU runtime (was the instance started by another backend?)');
  }
  if ('args' in raw) {
    throw new Error('it carries a command line; the target builds its own from the instance definition');
  }
  const r = MigrationInfoSchema.safeParse(raw);
  if (!r.success) throw new Error(r.error.issues.map((i) => `${i.path.join('.') || 'runtime'}: ${i.message}`).join('; '));
  const rt = r.data as QemuRuntime;
  const mismatch: string[] = [];
  const want = (what: string, got: unknown, expected: unknown) => {
    if (got !== expected) mismatch.push(`${what} ${JSON.stringify(got)} (the instance has ${JSON.stringify(expected)})`);
  };
  want('name', rt.name, inst.name);
  want('uuid', rt.uuid, inst.uuid);
  want('vcpus', rt.vcpus, inst.vcpus);
  want('device memory', rt.deviceMemory, inst.memory);
  want('disks', rt.disks, inst.disks.length);
  if (rt.memory > rt.deviceMemory) mismatch.push(`memory ${rt.memory} above the device model's ${rt.deviceMemory}`);
  if (mismatch.length) throw new Error(`it does not match instance ${inst.name}: ${mismatch.join(', ')}`);
  return { ...rt, hvparams: inst.hvparams };
}

/** The monitor argument; its unique socket path is also how the driver recognises its process. */
export const qmpArg = (socket: string): string => `unix:${socket},server=on,wait=off`;
