/**
 * The runs of bench:qmp that do not go through the workflow: (a) the bare QMP script, and (c) the
 * qemu driver's RPCs called directly in the status loop's pattern (BENCH_DIRECT=1), plus the
 * activity trace of a (b) run. See bench/qmp-migration.ts.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { freePort } from '../adapters/common/net.js';
import { readHeartbeat } from '../adapters/qemu/guest.js';
import { killPid, spawnDetached, waitGone } from '../adapters/qemu/process.js';
import { QmpClient, withQmp } from '../adapters/qemu/qmp.js';
import { qmpArg } from '../adapters/qemu/runtime.js';
import type { QueryMigrate } from '../adapters/qemu/status.js';
import type { QemuNode } from '../adapters/qemu/node.js';
import type { SimHardware } from '../adapters/sim/hardware.js';
import type { RpcInstance } from '../domain/instance.js';
import type { HvMigrationSettings } from '../domain/ports.js';

/** What (a) needs of a profile's settings. */
export interface BareSettings {
  bandwidth: number;
  downtime: number;
  caps: string[];
}
export const WARMUP_MS = 1000;
const MiB = 1024 * 1024;
const capsOf = (s: BareSettings) => ({
  capabilities: [
    { capability: 'events', state: true },
    { capability: 'return-path', state: true },
    ...s.caps.map((capability) => ({ capability, state: true })),
  ],
});

async function waitQmp(path: string, pid: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      (await QmpClient.connect(path, { connectTimeoutMs: 1000 })).close();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`QEMU ${pid} did not open ${path}`);
      await sleep(5);
    }
  }
}

export interface Run {
  /** Wall time of the hypervisor part, ms. */
  hv: number;
  /** QEMU's total-time and downtime of the migration, ms. */
  total: number;
  downtime: number;
  /** QEMU's passes over the memory (dirty-sync-count). */
  passes: number;
  /** The transfer, epoch ms: `migrate` sent → completion seen. */
  transfer: [number, number];
}

/** (a): boots a VM, lets it dirty its memory, then times the bare QMP migration to a new process. */
export async function bareRun(dir: string, args: string[], round: number, s: BareSettings): Promise<Run> {
  const srcQmp = join(dir, `src-${round}.qmp`);
  const srcPid = await spawnDetached('qemu-system-x86_64', [...args, '-qmp', qmpArg(srcQmp)], join(dir, 'bare.log'));
  await waitQmp(srcQmp, srcPid);
  await sleep(WARMUP_MS);

  const ip = '127.0.2.12';
  const port = await freePort(ip, 8102);
  const qmp = join(dir, `dst-${round}.qmp`);
  const t0 = performance.now();
  const pid = await spawnDetached(
    'qemu-system-x86_64',
    [...args, '-qmp', qmpArg(qmp), '-incoming', `tcp:${ip}:${port}`],
    join(dir, 'bare.log'),
  );
  await waitQmp(qmp, pid);
  await withQmp(qmp, (q) => q.execute('migrate-set-capabilities', capsOf(s)));
  let from = 0;
  let to = 0;
  const done = await withQmp(srcQmp, async (q) => {
    await q.execute('migrate-set-capabilities', capsOf(s));
    await q.execute('migrate-set-parameters', { 'max-bandwidth': s.bandwidth * MiB, 'downtime-limit': s.downtime });
    await q.execute('migrate', { uri: `tcp:${ip}:${port}` });
    from = Date.now();
    for (;;) {
      let m = await q.execute<QueryMigrate>('query-migrate');
      if (m.status === 'completed') {
        to = Date.now();
        // QEMU 7.2 may answer the first `completed` with zero timings: ask again for the statistics.
        for (let k = 0; !m['total-time'] && k < 100; k++) {
          await sleep(5);
          m = await q.execute<QueryMigrate>('query-migrate');
        }
        return m;
      }
      if (m.status === 'failed' || m.status === 'cancelled') throw new Error(`bare migration ${m.status}: ${m['error-desc'] ?? ''}`);
      await sleep(10);
    }
  });
  const st = await withQmp(qmp, (q) => q.execute<{ status: string }>('query-status'));
  if (st.status !== 'running') throw new Error(`(a): the destination is ${st.status}`);
  await withQmp(srcQmp, (q) => q.execute('quit')).catch(() => undefined);
  await waitGone(srcPid, 10_000);
  const hv = performance.now() - t0;

  if (!(await readHeartbeat(qmp)).booted) throw new Error('(a): the guest does not run on the destination');
  await killPid(pid);
  const passes = done.ram?.['dirty-sync-count'] ?? 0;
  return { hv, total: done['total-time'] ?? 0, downtime: done.downtime ?? 0, passes, transfer: [from, to] };
}

export async function trace(handle: WorkflowHandle): Promise<void> {
  const history = await handle.fetchHistory();
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
    t ? Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
  const rows = new Map<string, { name: string; at: number; started: number; done: number }>();
  for (const e of history.events ?? []) {
    const id = String(e.eventId);
    const sch = e.activityTaskScheduledEventAttributes;
    if (sch) rows.set(id, { name: sch.activityType?.name ?? '?', at: ms(e.eventTime), started: 0, done: 0 });
    const st = e.activityTaskStartedEventAttributes;
    if (st) rows.get(String(st.scheduledEventId))!.started = ms(e.eventTime);
    const c = e.activityTaskCompletedEventAttributes;
    if (c) rows.get(String(c.scheduledEventId))!.done = ms(e.eventTime);
  }
  const t0 = [...rows.values()][0]?.at ?? 0;
  for (const r of rows.values()) {
    console.log(
      `      ${String(r.at - t0).padStart(5)} ms  ${r.name.padEnd(30)} to start ${String(r.started - r.at).padStart(4)} ms, ran ${String(r.done - r.started).padStart(4)} ms`,
    );
  }
}

/** What (c) needs: the bench's own driver instances and the instance as each node sees it. */
export interface DirectSetup {
  drivers: Record<string, QemuNode>;
  ri: (node: string) => RpcInstance;
  secondaryIp: (node: string) => string;
  hw: SimHardware;
}

/** query-migrate once QEMU has filled in the migration's total time. */
export async function finalStats(q: QmpClient): Promise<QueryMigrate> {
  let m = await q.execute<QueryMigrate>('query-migrate');
  for (let k = 0; !m['total-time'] && k < 100; k++) {
    await sleep(5);
    m = await q.execute<QueryMigrate>('query-migrate');
  }
  return m;
}

/**
 * (c): the driver's RPCs called directly, no Temporal — accept, migrate, then the status loop of
 * `waitForMigration` (a status RPC, then the event wait of `pollMs`), finalize both sides — from S to T
 * with the instance's DRBD disks Primary on both nodes for the duration (as the workflow makes them).
 * The VM is started on S first and shut down on T after.
 */
export async function directRun(d: DirectSetup, S: string, T: string, settings: HvMigrationSettings, pollMs: number): Promise<Run> {
  const s = d.drivers[S]!;
  const t = d.drivers[T]!;
  const roles = new Map<string, string>();
  await d.hw.mutate((st) => {
    for (const n of [S, T])
      for (const [minor, dev] of Object.entries(st.nodes[n]!.drbd))
        if (dev.instance === 'web1') {
          roles.set(`${n}/${minor}`, dev.role);
          dev.role = 'Primary';
        }
  });
  try {
    await s.instanceStart(d.ri(S), 'bench');
    await sleep(WARMUP_MS);
    const info = await s.migrationInfo(d.ri(S));
    const t0 = performance.now();
    const ip = d.secondaryIp(T);
    const { port } = await t.acceptInstance(d.ri(T), info, ip, { postcopy: settings.postcopy });
    await s.instanceMigrate(d.ri(S), { node: T, ip, port }, true, settings);
    const from = Date.now();
    for (;;) {
      const st = await s.instanceGetMigrationStatus(d.ri(S));
      if (st.status === 'completed' || st.status === 'failed') break;
      const w = await s.instanceWaitMigrationEvent!(d.ri(S), pollMs);
      if (w.status === 'completed' || w.status === 'failed') break;
    }
    const to = Date.now();
    const m = await withQmp(s.qmpPath('web1'), finalStats);
    if (m.status !== 'completed') throw new Error(`(c): the migration ${m.status}`);
    await s.instanceFinalizeMigrationSrc(d.ri(S), true, true);
    await t.instanceFinalizeMigrationDst(d.ri(T), info, true);
    const hv = performance.now() - t0;
    if (!(await readHeartbeat(t.qmpPath('web1'))).booted) throw new Error('(c): the guest does not run on the destination');
    await t.instanceShutdown(d.ri(T), 30, 'bench');
    const passes = m.ram?.['dirty-sync-count'] ?? 0;
    return { hv, total: m['total-time'] ?? 0, downtime: m.downtime ?? 0, passes, transfer: [from, to] };
  } finally {
    await d.hw.mutate((st) => {
      for (const [k, role] of roles) {
        const [n, minor] = k.split('/') as [string, string];
        st.nodes[n]!.drbd[minor]!.role = role as 'Primary' | 'Secondary';
      }
    });
  }
}
