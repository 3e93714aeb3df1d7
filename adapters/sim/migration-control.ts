/**
 * The simulated node's side of a running migration: the status it reports and the changes
 * `instance_migration_control` makes (start-postcopy, pause-source, set-downtime), each idempotent.
 */
import type { HvMigrationSettings, MigrationControl, MigrationStatusPayload, MigrationTarget } from '../../domain/ports.js';
import { checkpoint, migrationProgress } from './migration-model.js';
import { fail } from './node-frame.js';
import type { SimMigration, SimProcess, SimState } from './state.js';

/** The RPC log's detail of an instance_migrate (with the capabilities a policy enabled, if any). */
export function migrateDetail(target: MigrationTarget, live: boolean, settings: HvMigrationSettings | undefined): string {
  const base = `${target.node}:${target.port} ${live ? 'live' : 'non-live'}`;
  const caps = [settings?.autoConverge ? 'auto-converge' : null, settings?.postcopy ? 'postcopy-ram' : null].filter((c) => c !== null);
  return caps.length ? `${base} ${caps.join(':')}` : base;
}

/** What instance_get_migration_status reports of `m` at `now` (sim ms). */
export function migrationStatus(m: SimMigration, now: number): MigrationStatusPayload {
  const p = migrationProgress(m, m.endedAt ?? now);
  const out: MigrationStatusPayload = { status: m.status, transferredRam: Math.round(p.transferred), totalRam: m.ram };
  if (m.error) out.error = m.error;
  if (m.status === 'active' || m.status === 'postcopy-active') {
    out.remainingRam = Math.round(p.remaining * 100) / 100;
    out.dirtyRate = Math.round(p.dirtyRate * 100) / 100;
    out.throttlePercent = p.throttle;
    out.passes = p.passes;
    if (m.downtimeMs !== undefined) out.downtimeLimitMs = m.downtimeMs;
  }
  if (m.status === 'postcopy-active') out.postcopyStatus = 'postcopy-active';
  return out;
}

/** Applies `control` to the running migration `m` of `proc` (the source's process of `instance`). */
export function controlMigration(
  s: SimState,
  proc: SimProcess,
  m: SimMigration,
  instance: string,
  control: MigrationControl,
  now: number,
): void {
  switch (control.action) {
    case 'set-downtime':
      if (m.downtimeMs === control.downtimeMs) return;
      checkpoint(m, now);
      m.downtimeMs = control.downtimeMs;
      return;
    case 'pause-source':
      if (m.status === 'postcopy-active' || proc.state === 'paused') return;
      checkpoint(m, now, 'stopcopy');
      proc.state = 'paused';
      proc.pausedBy = 'stop';
      return;
    case 'start-postcopy': {
      if (m.status === 'postcopy-active') return;
      const dst = s.nodes[m.targetNode]?.processes[instance];
      if (!m.postcopy || !dst?.incoming?.postcopy) {
        return fail(`Cannot start post-copy for ${instance}: the postcopy-ram capability is not enabled on both nodes`);
      }
      checkpoint(m, now, 'postcopy');
      m.status = 'postcopy-active';
      // The destination runs from now on and holds the only current state; the source stops.
      proc.state = 'paused';
      proc.pausedBy = 'postmigrate';
      dst.state = 'running';
      delete dst.pausedBy;
      delete dst.incoming;
      return;
    }
  }
}
