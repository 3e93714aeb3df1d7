/**
 * The QEMU driver's view of a running outgoing migration: Ganeti's instance_get_migration_status,
 * the wait for QEMU's `MIGRATION` event that lets the master see the end of the transfer at once,
 * and the changes a migration policy makes while it runs (post-copy, pausing the source, the
 * downtime limit). Every change is recorded in the instance's metadata before it is sent, so a
 * retried call after a crash finds it done and answers as the first one would have.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { RpcInstance } from '../../domain/instance.js';
import type { MigrationControl, MigrationStatusPayload } from '../../domain/ports.js';
import { POLL_MAX_MS } from '../../domain/limits.js';
import { MigrationControlSchema } from '../../domain/rpc-schemas.js';
import type { QemuMeta } from './files.js';
import { fail, type QemuFrame } from './frame.js';
import { checked } from './migration.js';
import type { QmpClient, QmpEvent } from './qmp.js';
import { IN_FLIGHT, migrationSummary, runState, statusPayload, type QueryMigrate } from './status.js';

/** The longest wait for the event the master may ask for (its poll interval is at most this). */
export const EVENT_WAIT_MAX_MS = POLL_MAX_MS;

const migrationEvent = (e: QmpEvent) => (e.event === 'MIGRATION' ? String(e.data?.status ?? '') : null);

/**
 * `query-migrate`, then — while the transfer runs — up to `waitMs` for QEMU's `MIGRATION` event of its
 * end (or of the switch to post-copy), and a fresh query either way. QEMU 7.2 can answer the first
 * `completed` with zero timings; the driver then asks again until they are set.
 */
async function queryAfterEvent(q: QmpClient, waitMs: number, signal?: AbortSignal): Promise<QueryMigrate> {
  let m = await q.execute<QueryMigrate>('query-migrate');
  if (m.status && IN_FLIGHT.has(m.status) && waitMs > 0) {
    const was = m.status;
    await q.waitEvent(
      (e) => {
        const st = migrationEvent(e);
        return st !== null && (!IN_FLIGHT.has(st) || (st.startsWith('postcopy') && !was.startsWith('postcopy')));
      },
      waitMs,
      signal,
    );
    m = await q.execute<QueryMigrate>('query-migrate');
  }
  // The timings follow the event within a few ms (a 5 ms step; at most half a second).
  for (let i = 0; m.status === 'completed' && !m['total-time'] && i < 100; i++) {
    await sleep(5);
    m = await q.execute<QueryMigrate>('query-migrate');
  }
  return m;
}

/** The status RPC, waiting up to `waitMs` for the event (interrupted by any other RPC on the instance). */
function statusRpc(f: QemuFrame, inst: RpcInstance, waitMs: number): Promise<MigrationStatusPayload> {
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
      const y = f.yielding(inst.name);
      const { migrate, status } = await f
        .qmp(meta, async (q) => {
          const m = await queryAfterEvent(q, waitMs, y.signal);
          return { migrate: m, status: await runState(q) };
        })
        .finally(y.release);
      ctx.mirror(inst.name, { meta, pid, status, migrate });
      // QEMU's own account of a finished migration, kept in the RPC log (`sim log`).
      if (migrate.status === 'completed') ctx.detail = migrationSummary(migrate);
      else if (migrate.status === 'failed') ctx.detail = `failed: ${migrate['error-desc'] ?? 'no error given'}`;
      return statusPayload(migrate, meta.migration?.downtimeMs);
    },
    true,
  );
}

/**
 * Ganeti's GetMigrationStatus from `query-migrate`, with transferred/total/remaining RAM in MiB, the
 * dirty rate, passes, auto-converge's throttle and the downtime limit. While the transfer runs it waits
 * up to `statusWaitMs` (250 ms) for its end, so completion is seen at once.
 */
export function instanceGetMigrationStatus(f: QemuFrame, inst: RpcInstance): Promise<MigrationStatusPayload> {
  return statusRpc(f, inst, f.statusWaitMs);
}

/**
 * The master's pause between two status polls, spent waiting for QEMU's event instead: answers the
 * status as soon as the transfer ends (or switches to post-copy), else after `timeoutMs`. Any other
 * RPC on the instance in this process ends the wait at once (it holds the instance's monitor).
 */
export function instanceWaitMigrationEvent(f: QemuFrame, inst: RpcInstance, timeoutMs: number): Promise<MigrationStatusPayload> {
  const ms = checked(z.number().int().nonnegative().max(EVENT_WAIT_MAX_MS), timeoutMs, 'Failed to get the migration status: ', 'wait');
  return statusRpc(f, inst, ms);
}

/**
 * A migration policy's change to the running outgoing migration (domain/ports.ts MigrationControl):
 * - start-postcopy: `migrate-start-postcopy` (the postcopy-ram capability must have been asked for at
 *   migrate); recorded first, since from then on the source must never run again (finalize refuses
 *   to resume it). Answers once QEMU reports post-copy (or the end), within a second.
 * - pause-source: `stop` on the source, so the transfer completes as a non-live one (the destination
 *   then stays paused until finalize `cont`s it); an abort still resumes the source.
 * - set-downtime: `migrate-set-parameters` `downtime-limit`.
 * Idempotent: what was done already (recorded, or seen in QEMU) is not done again. Refused when no
 * migration of the instance is active here — except a retry of the very control that let it complete.
 */
export async function instanceMigrationControl(
  f: QemuFrame,
  inst: RpcInstance,
  control: MigrationControl,
): Promise<MigrationStatusPayload> {
  const P = 'Failed to control the migration: ';
  const c = checked(MigrationControlSchema, control, P, 'migration control');
  const detail = c.action === 'set-downtime' ? `set-downtime ${c.downtimeMs} ms` : c.action;
  return f.rpc('instance_migration_control', inst.name, detail, P, async (ctx) => {
    const found = f.files.locate(inst.name);
    if (!found?.pid) {
      f.files.dropIfStale(found);
      ctx.mirror(inst.name, null);
      return fail(`${P}instance ${inst.name} is not running on ${f.node}`);
    }
    const { meta, pid } = found as { meta: QemuMeta; pid: number };
    const mig = meta.migration;
    const { migrate, status } = await f.qmp(meta, async (q) => {
      let m = await q.execute<QueryMigrate>('query-migrate');
      const st = await runState(q);
      const active = !!mig && !!m.status && IN_FLIGHT.has(m.status);
      const done =
        !!mig &&
        m.status === 'completed' &&
        ((c.action === 'start-postcopy' && mig.postcopy) ||
          (c.action === 'pause-source' && mig.pausedSource) ||
          (c.action === 'set-downtime' && mig.downtimeMs === c.downtimeMs));
      if (!active && !done) return fail(`${P}no migration of ${inst.name} is active on ${f.node} (${m.status ?? 'none'})`);
      if (done) return { migrate: m, status: st };
      const save = (change: Partial<NonNullable<QemuMeta['migration']>>) => {
        meta.migration = { ...mig!, ...change };
        f.files.writeMeta(meta);
      };
      switch (c.action) {
        case 'start-postcopy': {
          if (m.status!.startsWith('postcopy')) break;
          if (!mig!.settings?.postcopy) return fail(`${P}post-copy was not enabled when the migration of ${inst.name} started`);
          save({ postcopy: true });
          await q.execute('migrate-start-postcopy');
          // QEMU switches at its next iteration: answer once it did (or the transfer ended).
          await q.waitEvent((e) => {
            const s = migrationEvent(e);
            return s !== null && (s.startsWith('postcopy') || !IN_FLIGHT.has(s));
          }, 1000);
          m = await q.execute<QueryMigrate>('query-migrate');
          break;
        }
        case 'pause-source':
          if (!mig!.pausedSource) save({ pausedSource: true });
          if (st === 'running') await q.execute('stop');
          break;
        case 'set-downtime':
          if (mig!.downtimeMs !== c.downtimeMs) save({ downtimeMs: c.downtimeMs });
          await q.execute('migrate-set-parameters', { 'downtime-limit': c.downtimeMs });
          break;
      }
      return { migrate: m, status: await runState(q) };
    });
    ctx.mirror(inst.name, { meta, pid, status, migrate });
    return statusPayload(migrate, meta.migration?.downtimeMs);
  });
}
