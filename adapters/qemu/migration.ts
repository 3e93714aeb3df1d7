/**
 * The QEMU driver's migration RPCs, Ganeti's KVM hypervisor side of a live migration:
 * accept_instance (the incoming process), instance_migrate, instance_get_migration_status and the
 * two finalize RPCs. Each step that creates something is recorded in the instance's metadata first,
 * so a retried RPC re-attaches to the migration under way.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RpcInstance } from '../../domain/instance.js';
import type { MigrationStatusPayload, MigrationTarget } from '../../domain/ports.js';
import type { QemuMeta } from './files.js';
import { runningCopyRefusal, staleCopyRefusal } from '../../domain/naming.js';
import { fail, type QemuFrame } from './frame.js';
import { AddressInUse, quit } from './launch.js';
import { killPid, portFree } from './process.js';
import { parseRuntime, type QemuRuntime } from './runtime.js';
import { IN_FLIGHT, MiB, migrationCaps, migrationSummary, runState, statusPayload, type QueryMigrate } from './status.js';

/**
 * Ganeti's AcceptInstance: QEMU with the source's device model (from its migration info) plus
 * `-incoming tcp:<secondary ip>:<port>`, the port taken from a pool (the first free one from the
 * node's base port), and the return path enabled so that a destination that rejects the state
 * makes the source fail instead of reporting success.
 */
export async function acceptInstance(f: QemuFrame, inst: RpcInstance, migrationInfo: string, targetIp: string): Promise<{ port: number }> {
  const P = 'Failed to accept instance: ';
  return f.rpc('accept_instance', inst.name, targetIp, P, async (ctx) => {
    const existing = await f.observe(inst.name);
    if (existing) {
      ctx.mirror(inst.name, existing);
      if (existing.status === 'inmigrate' && existing.meta.incoming) return { port: existing.meta.incoming.port }; // re-attach
      return fail(`${P}instance ${inst.name} is already running on ${f.node}`);
    }
    const n = f.hwNode();
    if (targetIp !== n.secondaryIp) return fail(`${P}cannot listen on ${targetIp}: address not on this node`);
    f.checkDisks(inst, P);
    let rt: QemuRuntime;
    try {
      rt = parseRuntime(migrationInfo);
    } catch (e) {
      return fail(`${P}cannot parse the migration information (${(e as Error).message})`);
    }
    const free = f.freeMemory(inst.name);
    if (rt.memory > free) return fail(`${P}not enough memory on ${f.node} (need ${rt.memory} MiB, free ${free} MiB)`);
    const taken = new Set(
      f.files
        .metaNames()
        .map((x) => f.files.readMeta(x)?.incoming?.port)
        .filter((p): p is number => p !== undefined),
    );
    let port = n.migrationBasePort;
    for (let tries = 0; ; port++) {
      if (taken.has(port)) continue;
      if (++tries > 100) return fail(`${P}no free migration port on ${targetIp} from ${n.migrationBasePort}`);
      if (!(await portFree(targetIp, port))) continue;
      try {
        await f.launch(inst.name, rt.args, rt, { ip: targetIp, port });
        break;
      } catch (e) {
        if (e instanceof AddressInUse) continue; // taken between the probe and QEMU's bind
        throw e;
      }
    }
    const meta = f.files.readMeta(inst.name)!;
    const status = await f.qmp(meta, async (q) => {
      await q.execute('migrate-set-capabilities', { capabilities: migrationCaps() });
      return runState(q);
    });
    if (status !== 'inmigrate') {
      await killPid(meta.pid!);
      f.files.removeFiles(meta);
      return fail(`${P}the incoming QEMU is ${status}, not waiting for the migration`);
    }
    ctx.mirror(inst.name, { meta, pid: meta.pid!, status });
    return { port };
  });
}

/**
 * Ganeti's MigrateInstance: `stop` first for a non-live migration, the return-path capability,
 * the instance's bandwidth and downtime, then `migrate` (which returns at once). A migration
 * already under way to the same target is re-attached.
 */
export async function instanceMigrate(f: QemuFrame, inst: RpcInstance, target: MigrationTarget, live: boolean): Promise<void> {
  const P = 'Failed to migrate instance: ';
  return f.rpc('instance_migrate', inst.name, `${target.node}:${target.port} ${live ? 'live' : 'non-live'}`, P, async (ctx) => {
    const found = f.files.locate(inst.name);
    if (!found?.pid) return fail(`${P}Instance not running, cannot migrate`);
    const { meta, pid } = found as { meta: QemuMeta; pid: number };
    const status = await f.qmp(meta, async (q) => {
      const st = await runState(q);
      if (st === 'inmigrate') return fail(`${P}Instance not running, cannot migrate`);
      const cur = await q.execute<QueryMigrate>('query-migrate');
      const m = meta.migration;
      const sameTarget = !!m && m.targetNode === target.node && m.ip === target.ip && m.port === target.port;
      if (cur.status && (IN_FLIGHT.has(cur.status) || cur.status === 'completed')) {
        if (sameTarget) return st; // already under way (a retried call): re-attach
        return fail(
          cur.status === 'completed'
            ? `${P}Can't migrate the vm that was paused due to previous migration`
            : `${P}There's a migration process in progress`,
        );
      }
      // Recorded before `migrate`, so a retry after a crash knows this migration is ours.
      meta.migration = { targetNode: target.node, ip: target.ip, port: target.port, live, startedAt: Date.now() };
      f.files.writeMeta(meta);
      if (!live && st === 'running') await q.execute('stop');
      await q.execute('migrate-set-capabilities', { capabilities: migrationCaps() });
      await q.execute('migrate-set-parameters', {
        'max-bandwidth': inst.hvparams.migration_bandwidth * MiB,
        'downtime-limit': inst.hvparams.migration_downtime,
        'max-postcopy-bandwidth': inst.hvparams.migration_bandwidth * MiB,
      });
      await q.execute('migrate', { uri: `tcp:${target.ip}:${target.port}` });
      return runState(q);
    });
    const migrate = await f.qmp(meta, (q) => q.execute<QueryMigrate>('query-migrate'));
    ctx.mirror(inst.name, { meta, pid, status, migrate });
  });
}

/**
 * Ganeti's GetMigrationStatus from `query-migrate`, with transferred/total RAM in MiB. QEMU 7.2 can
 * answer the first `completed` with zero timings; the driver then asks again until they are set.
 */
export async function instanceGetMigrationStatus(f: QemuFrame, inst: RpcInstance): Promise<MigrationStatusPayload> {
  return f.rpc(
    'instance_get_migration_status',
    inst.name,
    undefined,
    'Failed to get the migration status: ',
    async (ctx) => {
      const found = f.files.locate(inst.name);
      if (!found?.pid) {
        f.files.dropIfStale(found);
        ctx.mirror(inst.name, null);
        return fail(`Instance ${inst.name} is not running on ${f.node}`);
      }
      const { meta, pid } = found as { meta: QemuMeta; pid: number };
      const { migrate, status } = await f.qmp(meta, async (q) => {
        let m = await q.execute<QueryMigrate>('query-migrate');
        if (m.status && IN_FLIGHT.has(m.status) && f.statusWaitMs > 0) {
          // Events are on (migrate-set-capabilities "events"): wait a little for the end of the
          // transfer rather than answering "active" and being asked again a poll interval later;
          // then answer with a fresh query either way.
          await q.waitEvent((e) => e.event === 'MIGRATION' && !IN_FLIGHT.has(String(e.data?.status ?? 'active')), f.statusWaitMs);
          m = await q.execute<QueryMigrate>('query-migrate');
        }
        for (let i = 0; m.status === 'completed' && !m['total-time'] && i < 20; i++) {
          await sleep(25);
          m = await q.execute<QueryMigrate>('query-migrate');
        }
        return { migrate: m, status: await runState(q) };
      });
      ctx.mirror(inst.name, { meta, pid, status, migrate });
      // QEMU's own account of a finished migration, kept in the RPC log (`sim log`).
      if (migrate.status === 'completed') ctx.detail = migrationSummary(migrate);
      else if (migrate.status === 'failed') ctx.detail = `failed: ${migrate['error-desc'] ?? 'no error given'}`;
      return statusPayload(migrate);
    },
    true,
  );
}

/**
 * Ganeti's FinalizeMigrationDst. Success: the destination must run (a non-live migration leaves it
 * paused: `cont`); it records the source's runtime. Failure: the incoming process is killed,
 * without needing anything of it (Ganeti's master needs the runtime file here, which it lacks) —
 * but only while it is still incoming: a destination that runs (or is paused) holds the complete
 * state, the only current copy of the guest, and is never killed (a deviation from Ganeti).
 */
export async function instanceFinalizeMigrationDst(
  f: QemuFrame,
  inst: RpcInstance,
  migrationInfo: string,
  success: boolean,
): Promise<void> {
  const P = 'Failed to finalize migration on the target node: ';
  return f.rpc('instance_finalize_migration_dst', inst.name, success ? 'success' : 'failure', P, async (ctx) => {
    const found = f.files.locate(inst.name);
    if (!success) {
      if (found?.pid) {
        const st = await f.qmp(found.meta, (q) => runState(q)).catch(() => 'inmigrate');
        if (st !== 'inmigrate') {
          ctx.mirror(inst.name, { meta: found.meta, pid: found.pid, status: st });
          return fail(`${P}${runningCopyRefusal(inst.name, st)}`);
        }
        await killPid(found.pid);
        f.files.removeFiles(found.meta);
      } else f.files.dropIfStale(found);
      ctx.mirror(inst.name, null);
      return;
    }
    if (!found?.pid) {
      f.files.dropIfStale(found);
      ctx.mirror(inst.name, null);
      return fail(`${P}instance ${inst.name} is not running on ${f.node}`);
    }
    const { meta, pid } = found as { meta: QemuMeta; pid: number };
    const status = await f.qmp(meta, async (q) => {
      const deadline = Date.now() + f.switchoverWaitMs;
      let st = await runState(q);
      // The source reported completion; the destination may need a moment to switch over.
      while ((st === 'inmigrate' || st === 'finish-migrate') && Date.now() < deadline) {
        await sleep(20);
        st = await runState(q);
      }
      if (st === 'paused') {
        await q.execute('cont');
        st = await runState(q);
      }
      return st;
    });
    ctx.mirror(inst.name, { meta, pid, status });
    if (status !== 'running') return fail(`${P}instance ${inst.name} did not become running (status ${status})`);
    meta.runtime = migrationInfo;
    delete meta.incoming;
    delete meta.migration;
    f.files.writeMeta(meta);
    ctx.mirror(inst.name, { meta, pid, status });
  });
}

/**
 * Ganeti's FinalizeMigrationSource. Success: QEMU must report the migration completed (with the
 * return path, the destination has then loaded the state) before the source is told to `quit`.
 * Failure: a migration still running is cancelled, and a paused source is resumed (`cont`) — unless
 * the transfer completed: then the destination holds the current state and this copy is stale, so it
 * is never resumed (a deviation from Ganeti).
 */
export async function instanceFinalizeMigrationSrc(f: QemuFrame, inst: RpcInstance, success: boolean, _live: boolean): Promise<void> {
  const P = 'Failed to finalize the migration on the source node: ';
  return f.rpc('instance_finalize_migration_src', inst.name, success ? 'success' : 'failure', P, async (ctx) => {
    const found = f.files.locate(inst.name);
    if (!found?.pid) {
      // Already gone: nothing left to finalize.
      f.files.dropIfStale(found);
      ctx.mirror(inst.name, null);
      if (success) ctx.edit({ kind: 'links', instance: inst.name, present: false });
      return;
    }
    const { meta, pid } = found as { meta: QemuMeta; pid: number };
    if (success) {
      const { migrate, status } = await f.qmp(meta, async (q) => ({
        migrate: await q.execute<QueryMigrate>('query-migrate'),
        status: await runState(q),
      }));
      if (migrate.status !== 'completed' || status !== 'postmigrate') {
        ctx.mirror(inst.name, { meta, pid, status, migrate });
        return fail(`${P}migration is ${migrate.status ?? 'not running'} (source ${status}), refusing to stop the source`);
      }
      await quit(f.files, meta, pid);
      f.files.removeFiles(meta);
      ctx.mirror(inst.name, null);
      ctx.edit({ kind: 'links', instance: inst.name, present: false });
      return;
    }
    const status = await f.qmp(meta, async (q) => {
      let m = await q.execute<QueryMigrate>('query-migrate');
      if (m.status === 'completed' || (await runState(q)) === 'postmigrate') return 'completed';
      if (m.status && (IN_FLIGHT.has(m.status) || m.status === 'cancelling')) {
        if (m.status !== 'cancelling') await q.execute('migrate_cancel');
        const deadline = Date.now() + 10_000;
        while (m.status && (IN_FLIGHT.has(m.status) || m.status === 'cancelling') && Date.now() < deadline) {
          await sleep(20);
          m = await q.execute<QueryMigrate>('query-migrate');
        }
      }
      let st = await runState(q);
      if (st === 'paused' || st === 'postmigrate') {
        await q.execute('cont');
        st = await runState(q);
      }
      return st;
    });
    if (status === 'completed') {
      ctx.mirror(inst.name, { meta, pid, status: 'postmigrate' });
      return fail(`${P}${staleCopyRefusal(inst.name)}`);
    }
    delete meta.migration;
    f.files.writeMeta(meta);
    ctx.mirror(inst.name, { meta, pid, status });
  });
}
