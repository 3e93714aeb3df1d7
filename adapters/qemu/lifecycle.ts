/**
 * The QEMU driver's lifecycle RPCs: instance_start (a real process, once), instance_shutdown (ACPI
 * power button, then SIGKILL) and instance_balloon_memory.
 */
import type { RpcInstance } from '../../domain/instance.js';
import type { QemuMeta } from './files.js';
import { fail, type QemuFrame } from './frame.js';
import { ensureImages } from './launch.js';
import { killPid, waitGone } from './process.js';
import { deviceModelArgs, newRuntime, parseRuntime } from './runtime.js';
import { MiB, runState } from './status.js';

export async function instanceBalloonMemory(f: QemuFrame, inst: RpcInstance, memory: number): Promise<void> {
  const P = `Cannot balloon instance ${inst.name}: `;
  return f.rpc('instance_balloon_memory', inst.name, String(memory), P, async (ctx) => {
    const o = await f.observe(inst.name);
    if (!o || o.status === 'inmigrate') return fail(`${P}not running on ${f.node}`);
    await f.qmp(o.meta, (q) => q.execute('balloon', { value: memory * MiB }));
    // The device model's -m stays (the destination must match it); the balloon target is the memory.
    const rt = parseRuntime(o.meta.runtime);
    o.meta.runtime = JSON.stringify({ ...rt, memory });
    o.meta.memory = memory;
    f.files.writeMeta(o.meta);
    ctx.mirror(inst.name, o);
  });
}

/**
 * Soft shutdown: ACPI power button (`system_powerdown`, repeated every 5 s, as Ganeti does) until
 * the timeout, then SIGKILL. Not running: nothing to do.
 */
export async function instanceShutdown(f: QemuFrame, inst: RpcInstance, timeoutSec: number, reason: string): Promise<void> {
  const P = `Failed to stop instance ${inst.name}: `;
  return f.rpc('instance_shutdown', inst.name, reason || undefined, P, async (ctx) => {
    const found = f.files.locate(inst.name);
    if (found?.pid) {
      const { meta, pid } = found as { meta: QemuMeta; pid: number };
      let gone = false;
      const deadline = Date.now() + timeoutSec * 1000;
      while (!gone && Date.now() < deadline) {
        await f.qmp(meta, (q) => q.execute('system_powerdown')).catch(() => undefined);
        gone = await waitGone(pid, Math.max(0, Math.min(5000, deadline - Date.now())));
      }
      if (!gone) {
        ctx.detail = `forced after ${timeoutSec} s${reason ? `; ${reason}` : ''}`;
        gone = await killPid(pid);
      }
      if (!gone) return fail(`Could not shutdown instance '${inst.name}' even by destroy`);
      f.files.removeFiles(found.meta);
    } else f.files.dropIfStale(found);
    ctx.mirror(inst.name, null);
    ctx.edit({ kind: 'links', instance: inst.name, present: false });
  });
}

export async function instanceStart(f: QemuFrame, inst: RpcInstance, reason: string): Promise<void> {
  const P = 'Hypervisor error: ';
  return f.rpc('instance_start', inst.name, reason || undefined, P, async (ctx) => {
    const o = await f.observe(inst.name);
    if (o && o.status !== 'inmigrate') {
      ctx.mirror(inst.name, o); // already running: a retried start changes nothing
      ctx.edit({ kind: 'links', instance: inst.name, present: true });
      return;
    }
    if (o) {
      await killPid(o.pid); // a leftover incoming process holds nothing worth keeping
      f.files.removeFiles(o.meta);
    }
    ensureImages(f.sharedDir, inst);
    await f.checkDisks(inst, P);
    const free = f.freeMemory(inst.name);
    if (inst.memory > free) return fail(`${P}not enough memory (need ${inst.memory} MiB, free ${free} MiB)`);
    const args = deviceModelArgs(inst, { accel: f.accel, kernel: f.kernel(), sharedDir: f.sharedDir });
    const meta = await f.launch(inst.name, args, newRuntime(inst));
    const status = await f.qmp(meta, (q) => runState(q));
    ctx.mirror(inst.name, { meta, pid: meta.pid!, status });
    ctx.edit({ kind: 'links', instance: inst.name, present: true });
  });
}
