/**
 * Starting and stopping the QEMU processes of one node: the spawn (detached, in its own process
 * group, so it outlives the agent), with the metadata written before it; `quit`; the sparse disk
 * images a start needs; the guest kernel; the binary's version.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, ftruncateSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RpcInstance } from '../../domain/instance.js';
import { NodeRpcError } from '../../domain/ports.js';
import type { QemuFiles, QemuMeta } from './files.js';
import { buildGuest, type GuestOptions } from './guest.js';
import { killPid, logTail, pidAlive, spawnDetached, startTimeOf, waitGone } from './process.js';
import { QmpClient, QmpUnavailable, withQmp } from './qmp.js';
import { qmpArg, sharedImagePath, type QemuRuntime } from './runtime.js';
import { MiB } from './status.js';

/** The guest the qemu backend boots by default: idle (halts between 100 Hz ticks), 32 MiB to migrate. */
export const DEFAULT_GUEST: GuestOptions = { fillMb: 32, hlt: true, hz: 100 };

/** QEMU could not bind its incoming port (taken between the probe and the bind). */
export class AddressInUse extends Error {}

/** What starting a process needs to know of its node. */
export interface LaunchSite {
  files: QemuFiles;
  node: string;
  binary: string;
}

const versions = new Map<string, string>();

/** `QEMU emulator version 7.2.22 (…)` → `7.2.22` (Ganeti's hv_version comes from the binary too). */
export function qemuVersion(binary: string): string {
  let v = versions.get(binary);
  if (!v) {
    const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
    const m = /version (\d+\.\d+\.\d+)/.exec(r.stdout ?? '');
    if (!m) throw new NodeRpcError(`cannot determine the QEMU version of ${binary}: ${r.error?.message ?? r.stderr ?? ''}`);
    v = m[1]!;
    versions.set(binary, v);
  }
  return v;
}

/** The default guest kernel, built into `dir` on first use; null (with a warning) if it cannot be built. */
export function defaultKernel(dir: string, node: string): string | null {
  try {
    return buildGuest(dir, DEFAULT_GUEST);
  } catch (e) {
    console.warn(`[qemu ${node}] no guest kernel (${(e as Error).message}); instances boot the firmware only`);
    return null;
  }
}

/** One QMP session with the instance's process, journalled. */
export function qmpFor<T>(files: QemuFiles, meta: QemuMeta, fn: (q: QmpClient) => Promise<T>): Promise<T> {
  return withQmp(meta.qmp, fn, { journal: files.journal(meta.instance), connectTimeoutMs: 5000 });
}

/**
 * Starts QEMU for `name`. The metadata is written before the spawn (a crash right after it still
 * finds the process by its socket) and completed with the pid after it. Resolves when QMP answers.
 */
export async function launch(
  site: LaunchSite,
  name: string,
  deviceArgs: string[],
  runtime: QemuRuntime,
  incoming?: { ip: string; port: number },
): Promise<QemuMeta> {
  const { files } = site;
  mkdirSync(files.dir, { recursive: true });
  const qmp = files.qmpPath(name);
  rmSync(qmp, { force: true }); // a SIGKILLed QEMU leaves its socket file behind
  const argv = [...deviceArgs, '-qmp', qmpArg(qmp)];
  if (incoming) argv.push('-incoming', `tcp:${incoming.ip}:${incoming.port}`);
  const meta: QemuMeta = {
    instance: name,
    node: site.node,
    pid: null,
    createdAt: Date.now(),
    startTime: null,
    qmp,
    log: files.logPath(name),
    argv,
    runtime: JSON.stringify(runtime),
    memory: runtime.memory,
    vcpus: runtime.vcpus,
    ...(incoming ? { incoming } : {}),
  };
  files.writeMeta(meta);
  appendFileSync(meta.log, `--- ${new Date().toISOString()} ${site.node}: ${site.binary} ${argv.join(' ')}\n`);
  const pid = await spawnDetached(site.binary, argv, meta.log);
  meta.pid = pid;
  meta.startTime = startTimeOf(pid);
  files.writeMeta(meta);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (!pidAlive(pid)) {
      files.removeFiles(meta);
      const tail = logTail(meta.log);
      if (/Address already in use/.test(tail.split('\n---').pop() ?? '')) throw new AddressInUse(tail);
      throw new Error(`QEMU exited at start: ${tail.split('\n').slice(-3).join(' / ')}`);
    }
    try {
      (await QmpClient.connect(qmp, { connectTimeoutMs: 1000 })).close();
      return meta;
    } catch {
      if (Date.now() > deadline) {
        await killPid(pid);
        files.removeFiles(meta);
        throw new QmpUnavailable(`QEMU (pid ${pid}) did not open its monitor within 20 s`);
      }
      await sleep(5);
    }
  }
}

/** `quit`, then SIGKILL if QEMU does not exit. */
export async function quit(files: QemuFiles, meta: QemuMeta, pid: number): Promise<void> {
  await qmpFor(files, meta, (q) => q.execute('quit')).catch(() => undefined);
  if (!(await waitGone(pid, 10_000))) await killPid(pid);
}

/** A sparse image of each file-backed disk's size that does not exist yet (what Ganeti's disk creation would have made). */
export function ensureImages(sharedDir: string, inst: RpcInstance): void {
  for (const d of inst.disks) {
    if (d.template !== 'sharedfile' && d.template !== 'file') continue;
    const path = sharedImagePath(sharedDir, inst, d.index);
    if (existsSync(path)) continue;
    mkdirSync(dirname(path), { recursive: true });
    const fd = openSync(path, 'w');
    try {
      ftruncateSync(fd, d.size * MiB);
    } finally {
      closeSync(fd);
    }
  }
}
