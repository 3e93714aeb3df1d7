/**
 * The QEMU driver's migration RPCs, Ganeti's KVM hypervisor side of a live migration:
 * accept_instance (the incoming process), instance_migrate, instance_get_migration_status and the
 * two finalize RPCs. Each step that creates something is recorded in the instance's metadata first,
 * so a retried RPC re-attaches to the migration under way.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { RpcInstance } from '../../domain/instance.js';
import { NodeRpcError, type HvAcceptSettings, type HvMigrationSettings, type MigrationTarget } from '../../domain/ports.js';
import { HvAcceptSettingsSchema, HvMigrationSettingsSchema } from '../../domain/rpc-schemas.js';
import type { QemuMeta } from './files.js';
import { runningCopyRefusal, staleCopyRefusal } from '../../domain/naming.js';
import { fail, type QemuFrame } from './frame.js';
import { AddressInUse, quit } from './launch.js';
import { killPid, portFree } from './process.js';
import { QmpError } from './qmp.js';
import { deviceModelArgs, parseMigrationInfo, type QemuRuntime } from './runtime.js';
import { IN_FLIGHT, MiB, migrationCaps, runState, type QueryMigrate } from './status.js';

/** The driver's boundary check of the settings (the node activity has checked them too). */
export function checked<T>(schema: z.ZodType<T>, v: unknown, P: string, what = 'migration settings'): T {
  const r = schema.safeParse(v);
  if (!r.success) throw new NodeRpcError(`${P}invalid ${what} (${z.prettifyError(r.error).replace(/\n/g, '; ')})`);
  return r.data;
}

/** Post-copy started: the destination holds (or is fetching) the current state; the source must never run again. */
export const postcopyRefusal = (instance: string): string =>
  `post-copy of ${instance} started: the destination holds the current state, refusing to resume this copy: run 'ganeti-temporal instance migrate --cleanup ${instance}'`;

/**
 * Ganeti's AcceptInstance: QEMU with the device model built here from the instance definition and
 * this node's settings — never a command line from the payload: migration info that carries one, or
 * that does not describe this instance, is refused before anything happens — plus
 * `-incoming tcp:<secondary ip>:<port>`, the port taken from a pool (the first free one from the
 * node's base port), and the return path enabled so that a destination that rejects the state
 * makes the source fail instead of reporting success.
 */
export async function acceptInstance(
  f: QemuFrame,
  inst: RpcInstance,
  migrationInfo: string,
  targetIp: string,
  settings?: HvAcceptSettings,
): Promise<{ port: number }> {
  const P = 'Failed to accept instance: ';
  const postcopy = settings ? checked(HvAcceptSettingsSchema, settings, P).postcopy : false;
  let rt: QemuRuntime;
  try {
    rt = parseMigrationInfo(migrationInfo, inst);
  } catch (e) {
    // Refused before the RPC frame: nothing on the node is touched, not even its RPC log.
    throw new NodeRpcError(`${P}refusing the migration information (${(e as Error).message})`);
  }
  return f.rpc('accept_instance', inst.name, targetIp, P, async (ctx) => {
    const existing = await f.observe(inst.name);
    if (existing) {
      ctx.mirror(inst.name, existing);
      if (existing.status === 'inmigrate' && existing.meta.incoming) {
        // Re-attach. The capabilities again (a crash may have come before them); QEMU refuses that
        // once the incoming migration runs, when they are set already.
        await f
          .qmp(existing.meta, (q) => q.execute('migrate-set-capabilities', { capabilities: migrationCaps({ postcopy }) }))
          .catch((e) => {
            if (!(e instanceof QmpError)) throw e;
          });
        return { port: existing.meta.incoming.port };
      }
      return fail(`${P}instance ${inst.name} is already running on ${f.node}`);
    }
    const n = f.facts();
    if (targetIp !== n.secondaryIp) return fail(`${P}cannot listen on ${targetIp}: address not on this node`);
    await f.checkDisks(inst, P);
    const args = deviceModelArgs(inst, { accel: f.accel, kernel: f.kernel(), sharedDir: f.sharedDir });
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
        await f.launch(inst.name, args, rt, { ip: targetIp, port });
        break;
      } catch (e) {
        if (e instanceof AddressInUse) continue; // taken between the probe and QEMU's bind
        throw e;
      }
    }
    const meta = f.files.readMeta(inst.name)!;
    if (postcopy) {
      meta.incoming = { ...meta.incoming!, postcopy };
      f.files.writeMeta(meta);
    }
    const status = await f.qmp(meta, async (q) => {
      await q.execute('migrate-set-capabilities', { capabilities: migrationCaps({ postcopy }) });
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
 * already under way to the same target is re-attached. With `settings` (the migration's policy):
 * its bandwidth and downtime instead, and the `auto-converge` and `postcopy-ram` capabilities.
 */
export async function instanceMigrate(
  f: QemuFrame,
  inst: RpcInstance,
  target: MigrationTarget,
  live: boolean,
  settings?: HvMigrationSettings,
): Promise<void> {
  const P = 'Failed to migrate instance: ';
  const s = settings ? checked(HvMigrationSettingsSchema, settings, P) : undefined;
  const bandwidth = s?.bandwidth ?? inst.hvparams.migration_bandwidth;
  const downtimeMs = s?.downtimeMs ?? inst.hvparams.migration_downtime;
  return f.rpc('instance_migrate', inst.name, `${target.node}:${target.port} ${live ? 'live' : 'non-live'}`, P, async (ctx) => {
    const found = f.files.locate(inst.name);
    if (!found?.pid) return fail(`${P}Instance not running, cannot migrate`);
    const { meta, pid } = found as { meta: QemuMeta; pid: number };
    const { status, migrate } = await f.qmp(meta, async (q) => {
      const st = await runState(q);
      if (st === 'inmigrate') return fail(`${P}Instance not running, cannot migrate`);
      const cur = await q.execute<QueryMigrate>('query-migrate');
      const m = meta.migration;
      const sameTarget = !!m && m.targetNode === target.node && m.ip === target.ip && m.port === target.port;
      if (cur.status && (IN_FLIGHT.has(cur.status) || cur.status === 'completed')) {
        if (sameTarget) return { status: st, migrate: cur }; // already under way (a retried call): re-attach
        return fail(
          cur.status === 'completed'
            ? `${P}Can't migrate the vm that was paused due to previous migration`
            : `${P}There's a migration process in progress`,
        );
      }
      // Recorded before `migrate`, so a retry after a crash knows this migration is ours.
      meta.migration = {
        targetNode: target.node,
        ip: target.ip,
        port: target.port,
        live,
        startedAt: Date.now(),
        ...(s ? { settings: s } : {}),
        downtimeMs,
      };
      f.files.writeMeta(meta);
      if (!live && st === 'running') await q.execute('stop');
      await q.execute('migrate-set-capabilities', { capabilities: migrationCaps(s) });
      await q.execute('migrate-set-parameters', {
        'max-bandwidth': bandwidth * MiB,
        'downtime-limit': downtimeMs,
        'max-postcopy-bandwidth': bandwidth * MiB,
      });
      await q.execute('migrate', { uri: `tcp:${target.ip}:${target.port}` });
      // The same monitor session answers what is reported (a reconnect costs a greeting and a handshake).
      return { status: await runState(q), migrate: await q.execute<QueryMigrate>('query-migrate') };
    });
    ctx.mirror(inst.name, { meta, pid, status, migrate });
  });
}

/**
 * Ganeti's FinalizeMigrationDst. Success: the destination must run (a non-live migration leaves it
 * paused: `cont`); its runtime is the one recorded (and checked) at accept. Failure: the incoming process is killed,
 * without needing anything of it (Ganeti's master needs the runtime file here, which it lacks) —
 * but only while it is still incoming: a destination that runs (or is paused) holds the complete
 * state, the only current copy of the guest, and is never killed (a deviation from Ganeti).
 */
export async function instanceFinalizeMigrationDst(
  f: QemuFrame,
  inst: RpcInstance,
  _migrationInfo: string,
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
        await sleep(5);
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
    // The runtime stays the one accept recorded (checked against the instance then); the payload's
    // copy is not trusted a second time.
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
 * the transfer completed, or post-copy started: then the destination holds the current state and this
 * copy is stale, so it is never resumed (a deviation from Ganeti).
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
      // Post-copy (recorded before it was asked for, or seen): never cancelled, never resumed.
      if (meta.migration?.postcopy || m.status?.startsWith('postcopy')) return 'postcopy';
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
    if (status === 'completed' || status === 'postcopy') {
      ctx.mirror(inst.name, { meta, pid, status: 'postmigrate' });
      return fail(`${P}${status === 'postcopy' ? postcopyRefusal(inst.name) : staleCopyRefusal(inst.name)}`);
    }
    delete meta.migration;
    f.files.writeMeta(meta);
    ctx.mirror(inst.name, { meta, pid, status });
  });
}
