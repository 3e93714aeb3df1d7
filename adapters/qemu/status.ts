/**
 * QEMU's states in Ganeti's terms: the migration status `instance_get_migration_status` reports, a
 * summary of a finished migration for the RPC log, and a process as the driver reports it.
 */
import type { HvMigrationStatus, MigrationStatusPayload, ObservedProcess } from '../../domain/ports.js';
import type { QemuMeta } from './files.js';
import type { QmpClient } from './qmp.js';

export const MiB = 1024 * 1024;

export interface QueryMigrate {
  status?: string;
  'total-time'?: number;
  downtime?: number;
  'error-desc'?: string;
  /** Auto-converge's vCPU throttle, percent (only while it throttles). */
  'cpu-throttle-percentage'?: number;
  ram?: {
    transferred: number;
    total: number;
    remaining: number;
    /** Pages per second the guest dirtied over the last period. */
    'dirty-pages-rate'?: number;
    'page-size'?: number;
    /** Passes over the guest memory (bitmap syncs). */
    'dirty-sync-count'?: number;
  };
}

/** A live process of ours and what QMP said about it. */
export interface Observed {
  meta: QemuMeta;
  pid: number;
  /** QEMU's run state (query-status). */
  status: string;
  migrate?: QueryMigrate;
}

/** QEMU's MigrationStatus → Ganeti's (what `instance_get_migration_status` reports). */
export function ganetiStatus(qemu: string | undefined): HvMigrationStatus {
  switch (qemu) {
    case undefined:
    case 'none':
      return 'none';
    case 'setup':
      return 'setup';
    case 'completed':
      return 'completed';
    case 'failed':
      return 'failed';
    case 'cancelling':
    case 'cancelled':
      return 'cancelled'; // only our own abort cancels; it will not complete any more
    case 'postcopy-active':
    case 'postcopy-paused':
    case 'postcopy-recover':
      return 'postcopy-active';
    default:
      return 'active'; // active, pre-switchover, device, wait-unplug, …: still transferring
  }
}

/** QEMU's migration states while the transfer is still going on. */
export const IN_FLIGHT = new Set([
  'setup',
  'active',
  'pre-switchover',
  'device',
  'wait-unplug',
  'postcopy-active',
  'postcopy-paused',
  'postcopy-recover',
]);

const mib = (bytes: number) => Math.round((bytes / MiB) * 100) / 100;

/** `query-migrate` in Ganeti's terms; `downtimeLimitMs`: what the driver last set (it is the only one who sets it). */
export function statusPayload(m: QueryMigrate, downtimeLimitMs?: number): MigrationStatusPayload {
  const out: MigrationStatusPayload = { status: ganetiStatus(m.status) };
  if (m.ram) {
    out.transferredRam = mib(m.ram.transferred);
    out.totalRam = mib(m.ram.total);
    if (m.status && IN_FLIGHT.has(m.status)) {
      out.remainingRam = mib(m.ram.remaining);
      if (m.ram['dirty-pages-rate'] !== undefined) out.dirtyRate = mib(m.ram['dirty-pages-rate'] * (m.ram['page-size'] ?? 4096));
      if (m.ram['dirty-sync-count'] !== undefined) out.passes = m.ram['dirty-sync-count'];
    }
  }
  if (m['cpu-throttle-percentage'] !== undefined) out.throttlePercent = m['cpu-throttle-percentage'];
  if (downtimeLimitMs !== undefined && m.status && m.status !== 'none') out.downtimeLimitMs = downtimeLimitMs;
  if (m['error-desc']) out.error = m['error-desc'];
  return out;
}

/** `completed: total-time 266 ms, downtime 31 ms, 136.0 MiB sent` (QEMU's statistics of a migration). */
export function migrationSummary(m: QueryMigrate): string {
  const sent = m.ram ? `, ${(m.ram.transferred / MiB).toFixed(1)} MiB sent` : '';
  const passes = m.ram?.['dirty-sync-count'] ? `, ${m.ram['dirty-sync-count']} passes` : '';
  return `completed: total-time ${m['total-time'] ?? '?'} ms, downtime ${m.downtime ?? '?'} ms${sent}${passes}`;
}

/** A real process as the driver reports it to the storage side (the simulated storage records it). */
export function observedProcess(o: Observed): ObservedProcess {
  const state: ObservedProcess['state'] = o.status === 'inmigrate' ? 'incoming' : o.status === 'running' ? 'running' : 'paused';
  const p: ObservedProcess = { state, memory: o.meta.memory, vcpus: o.meta.vcpus, runtime: o.meta.runtime };
  if (state === 'paused') p.pausedBy = o.status === 'postmigrate' ? 'postmigrate' : 'stop';
  if (state === 'incoming' && o.meta.incoming) p.incoming = { port: o.meta.incoming.port };
  const m = o.meta.migration;
  const st = o.migrate?.status;
  if (m && st && st !== 'none') {
    const g = ganetiStatus(st);
    const status = g === 'completed' || g === 'failed' || g === 'cancelled' ? g : 'active';
    p.migration = { targetNode: m.targetNode, targetIp: m.ip, port: m.port, live: m.live, status };
    if (o.migrate?.['error-desc']) p.migration.error = o.migrate['error-desc'];
  }
  return p;
}

/**
 * The capabilities a migration runs with, on both ends: every one the driver uses is set, off unless
 * asked for (QEMU keeps them across migrations of one process).
 */
export function migrationCaps(o: { autoConverge?: boolean; postcopy?: boolean } = {}) {
  return [
    { capability: 'events', state: true },
    // Without it a destination that rejects the state leaves the source "completed" and the guest nowhere.
    { capability: 'return-path', state: true },
    { capability: 'auto-converge', state: o.autoConverge ?? false },
    { capability: 'postcopy-ram', state: o.postcopy ?? false },
  ];
}

/** QEMU's run state (query-status). */
export async function runState(q: QmpClient): Promise<string> {
  return (await q.execute<{ status: string }>('query-status')).status;
}
