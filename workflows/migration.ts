/**
 * TLMigrateInstance._ExecMigration (docs/behaviour.md §5.2 "The steps M1 to M16"), with
 * `_AbortMigration` and `_RevertDiskStatus` (docs/behaviour.md §6 "Abort and revert") as
 * compensations, run in a non-cancellable scope.
 *
 * Stages and what ends them early:
 * - prepare (M1–M4): a failure or an abort changes nothing.
 * - disks (M5–M7): a failure is left as Ganeti leaves it, with a message naming `--cleanup`; an
 *   operator abort reverts the disk status (there is nothing to abort in the hypervisor yet).
 * - transfer (M8–M10): a failure or an abort runs abort + revert.
 * - commit (M11–M14): after the hypervisor reported the transfer complete — the point of no return —
 *   the migration only rolls forward (abort refused, cancellation ignored); failures name `--cleanup`.
 */
import { CancellationScope, isCancellation, log, patched } from '@temporalio/workflow';
import { ActivityFailure } from '../domain/errors.js';
import { hvVersionPairSafe } from '../domain/hypervisor.js';
import { isDrbd } from '../domain/instance.js';
import { cleanupCommand } from '../domain/naming.js';
import type { StepKey } from '../domain/plan.js';
import type { MigrationPlan } from '../domain/prereq.js';
import type { MigrationFailureDetails } from '../activities/hypervisor.js';
import { initialDowntimeMs, type MigrationPolicy } from '../domain/policy-rules.js';
import type { HvMigrationSettings } from '../domain/ports.js';
import { PolicyTransfer, type TransferOutcome } from './transfer.js';
import {
  closeInstanceDisks,
  diskConsistent,
  diskConsistentOn,
  findDisk,
  goReconnect,
  goStandalone,
  openInstanceDisks,
  reconnectSingleMaster,
  waitUntilSync,
} from './disks.js';
import { ri, type Exec } from './exec.js';
import { READ_AHEAD } from './prereq.js';
import { execFailure, isExecFailure } from './operation.js';
import type { RpcFailure } from './rpc.js';

export interface MigrationOptions {
  plan: MigrationPlan;
  allowRuntimeChanges: boolean;
  ignoreHvversions: boolean;
  /** The resolved migration policy (issue 14); null in histories recorded before it existed. */
  policy?: MigrationPolicy | null;
}

/** What the transfer and its abort need: the source's migration information and the mode. */
export interface Transfer {
  info: string;
  live: boolean;
  /** Unset in a cleanup's abort (no transfer of its own). */
  policy?: MigrationPolicy | null;
}

/**
 * M7 opens the disks on both nodes at once, and M13 closes the source's while the memory
 * reservation is released (docs/behaviour.md §13.1; histories before it: one after the other).
 */
export const AT_ONCE = 'open-and-release-at-once';

/** M11 finalizes source and target concurrently (docs/versioning.md; histories before it: in turn). */
export const FINALIZE_TOGETHER = 'finalize-both-at-once';

const DISK_STEPS: StepKey[] = ['close-target', 'standalone', 'dual-master', 'sync', 'open-shared'];
const TRANSFER_STEPS: StepKey[] = ['accept', 'migrate', 'memory-transfer'];

/** A failure in a step without rollback: name the command that repairs it, and flag the operation. */
export function leftForCleanup(x: Exec, e: unknown): unknown {
  if (!isExecFailure(e)) return e;
  const cmd = cleanupCommand(x.inst.name);
  x.op.needsHuman(`run '${cmd}'`);
  return execFailure(`${e.message} (the instance may be left half-migrated; run '${cmd}' to recover)`);
}

export async function execMigration(x: Exec, o: MigrationOptions): Promise<void> {
  const { source: S, target: T, inst } = x;
  const drbd = isDrbd(inst);
  let stage: 'prepare' | 'disks' | 'transfer' = 'prepare';
  const t: Transfer = { info: '', live: o.plan.live, policy: o.policy ?? null };
  try {
    const early = await prepare(x, o);
    // M4: migration info
    x.op.step('migration-info');
    const info = early ?? (await migrationInfo(x));
    if (!info.ok) throw execFailure(`Failed fetching source migration information from ${S}: ${info.msg}`);
    t.info = info.payload;

    stage = 'disks';
    // M5: demote the target
    x.op.step('close-target');
    await closeInstanceDisks(x, T);
    // M6: DRBD dual-primary
    if (drbd) {
      x.op.step('standalone');
      await goStandalone(x);
      x.op.step('dual-master');
      await goReconnect(x, true);
      x.op.step('sync');
      await waitUntilSync(x);
    }
    // M7: open for dual use
    x.op.step('open-shared');
    if (patched(AT_ONCE)) {
      // Both sides at once (Ganeti: the source, then the target); a failure reported in that order.
      const opened = await Promise.allSettled([openInstanceDisks(x, S, false), openInstanceDisks(x, T, false)]);
      const failed = opened.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    } else {
      await openInstanceDisks(x, S, false);
      await openInstanceDisks(x, T, false);
    }

    stage = 'transfer';
    await transferInstance(x, t);
  } catch (e) {
    if (isCancellation(e)) {
      if (stage === 'disks') {
        x.op.fb('Migration aborted, reverting the disks');
        x.op.beginCompensation('reverting');
        await CancellationScope.nonCancellable(() => revertDiskStatus(x));
        x.op.compensated(DISK_STEPS);
        x.op.abortEnded(`the disks were reverted; ${inst.name} stays on ${S}`);
        throw e;
      }
      if (stage !== 'transfer') throw e;
      if (!(await transferCompleted(x))) {
        x.op.fb('Migration aborted, aborting');
        await CancellationScope.nonCancellable(() => compensate(x, t));
        x.op.abortEnded(`the migration was aborted and the disks reverted; ${inst.name} stays on ${S}`);
        throw e;
      }
      // The transfer completed while the abort was on its way: the target is the current copy.
    } else throw stage === 'disks' ? leftForCleanup(x, e) : e;
  }

  // The point of no return: the hypervisor reported the memory transfer complete. Roll forward only.
  x.op.passPointOfNoReturn(`the hypervisor reported the memory transfer to ${T} complete`);
  if (x.op.abort) x.op.fb('The abort came too late: the memory transfer had completed; the migration rolls forward');
  await CancellationScope.nonCancellable(async () => {
    try {
      await commit(x, t);
    } catch (e) {
      throw leftForCleanup(x, e);
    }
  });
  // M15 (unmapping rbd/ext volumes) does not apply to drbd or sharedfile.
  x.op.fb('* done');
}

/** M4's read-only RPC: the source's migration information. */
const migrationInfo = (x: Exec) => x.rpc.call(x.source, 'migrationInfo', [ri(x, x.source)]);

/**
 * M1–M3: hypervisor versions, disk consistency, memory fit. With the read-ahead (READ_AHEAD), M2's
 * and M4's read-only RPCs go out together with M1's and are judged in Ganeti's order; M4's only when
 * M3 does not balloon (the information must describe the runtime after it). Returns M4's answer when
 * it was read ahead.
 */
async function prepare(x: Exec, o: MigrationOptions): Promise<Awaited<ReturnType<typeof migrationInfo>> | null> {
  const { source: S, target: T, inst } = x;
  const cur = o.plan.currentMemory;
  const free = o.plan.targetFreeMemory;
  const balloon = cur !== null && free !== null && cur > free;
  // M1: hypervisor versions
  x.op.step('hv-version');
  const ahead = patched(READ_AHEAD);
  const [infos, finds, early] = await Promise.all([
    x.rpc.all([S, T], 'nodeInfo', () => []),
    ahead && isDrbd(inst) ? Promise.all(inst.disks.map((_d, i) => findDisk(x, T, i))) : null,
    ahead && !balloon ? migrationInfo(x) : null,
  ]);
  const versions: string[] = [];
  infos.forEach((r, i) => {
    const node = [S, T][i]!;
    if (!r.ok) throw execFailure(`Unable to retrieve node information from node '${node}': ${r.msg}`);
    versions.push(r.payload.hvVersion);
  });
  const [sv, tv] = versions as [string, string];
  if (sv && tv && sv !== tv) {
    x.op.fb(`* warning: hypervisor version mismatch between source (${sv}) and target (${tv}) node`);
    if (hvVersionPairSafe(inst.hypervisor, sv, tv)) {
      x.op.fb(`  migrating from hypervisor version ${sv} to ${tv} should be safe`);
    } else {
      x.op.fb(`  migrating from hypervisor version ${sv} to ${tv} is likely unsupported`);
      if (!o.ignoreHvversions) throw execFailure(`Unsupported migration between hypervisor versions (${sv} to ${tv})`);
      x.op.fb('  continuing anyway (told to ignore version mismatch)');
    }
  }

  // M2: disk consistency on the target
  x.op.step('disk-consistency');
  x.op.fb('* checking disk consistency between source and target');
  for (let i = 0; i < inst.disks.length; i++) {
    const consistent = finds ? diskConsistent(x, T, finds[i]!) : await diskConsistentOn(x, T, i);
    if (!consistent) {
      throw execFailure(`Disk ${i} is degraded or not fully synchronized on target node, aborting migration`);
    }
  }

  // M3: memory fit
  if (balloon) {
    if (!o.allowRuntimeChanges) {
      throw execFailure(
        `Memory ballooning not allowed and not enough free memory to fit instance ${inst.name} on target node ${T} ` +
          `(have ${free}MB, need ${cur}MB)`,
      );
    }
    x.op.step('balloon');
    x.op.fb(`* setting instance memory to ${free}`);
    const r = await x.rpc.call(S, 'instanceBalloonMemory', [ri(x, S), free], `${free} MiB`);
    if (!r.ok) throw execFailure(`Cannot modify instance runtime memory: ${r.msg}`);
  }
  return early;
}

/** M8 accept, M9 migrate, M10 poll; each failure runs the abort sequence. */
async function transferInstance(x: Exec, t: Transfer): Promise<void> {
  const { source: S, target: T, inst } = x;
  x.op.step('accept');
  x.op.fb(`* preparing ${T} to accept the instance`);
  const policy = t.policy ?? null;
  const ip = x.snap.nodes[T]!.secondaryIp;
  const acc = policy
    ? await x.rpc.call(T, 'acceptInstance', [ri(x, T), t.info, ip, { postcopy: policy.postcopy }])
    : await x.rpc.call(T, 'acceptInstance', [ri(x, T), t.info, ip]);
  if (!acc.ok) return abortAndFail(x, t, 'Pre-migration failed, aborting', `Could not pre-migrate instance ${inst.name}: ${acc.msg}`);

  x.op.step('migrate');
  x.op.fb(`* migrating instance to ${T}`);
  const target = { node: T, ip: x.snap.nodes[T]!.secondaryIp, port: acc.payload.port };
  const settings = policy && hvSettings(policy, ri(x, S).hvparams.migration_downtime);
  const mode = t.live ? 'live' : 'non-live';
  const mig = settings
    ? await x.rpc.call(S, 'instanceMigrate', [ri(x, S), target, t.live, settings], mode)
    : await x.rpc.call(S, 'instanceMigrate', [ri(x, S), target, t.live], mode);
  if (!mig.ok) return abortAndFail(x, t, 'Migration failed, aborting', `Could not migrate instance ${inst.name}: ${mig.msg}`);

  x.op.step('memory-transfer');
  x.op.fb('* starting memory transfer');
  const st = policy && settings ? await new PolicyTransfer(x, policy, settings.downtimeMs).run() : await plainWait(x);
  if (st.kind === 'abort') {
    if (await transferCompleted(x)) return;
    return abortAndFail(x, t, 'Migration timed out, aborting', `Could not migrate instance ${inst.name}: ${st.message}`);
  }
  if (st.kind === 'failed') {
    progressLinesOf(st.failure).forEach((l) => x.op.fb(l));
    if (await transferCompleted(x)) return;
    return abortAndFail(x, t, 'Migration failed, aborting', `Could not migrate instance ${inst.name}: ${st.failure.msg}`);
  }
  st.lines.forEach((l) => x.op.fb(l));
}

/** The wait of histories recorded before policies existed. */
async function plainWait(x: Exec): Promise<TransferOutcome> {
  const timing = x.snap.cluster.timing;
  const st = await x.rpc.wait(x.source, 'waitForMigration', [
    ri(x, x.source),
    { pollMs: timing.migrationPollMs, progressMs: timing.migrationProgressMs },
  ]);
  return st.ok ? { kind: 'completed', lines: st.payload.lines } : { kind: 'failed', failure: st };
}

function hvSettings(p: MigrationPolicy, hvDowntimeMs: number): HvMigrationSettings {
  return { bandwidth: p.bandwidth, downtimeMs: initialDowntimeMs(p, hvDowntimeMs), autoConverge: p.autoConverge, postcopy: p.postcopy };
}

/** M11–M14, after the point of no return. */
async function commit(x: Exec, t: Transfer): Promise<void> {
  const { source: S, target: T, inst } = x;
  // M11: finalize both sides (both always attempted)
  x.op.step('finalize');
  const finalizeSrc = () => x.rpc.call(S, 'instanceFinalizeMigrationSrc', [ri(x, S), true, t.live], 'success');
  const finalizeDst = () => x.rpc.call(T, 'instanceFinalizeMigrationDst', [ri(x, T), t.info, true], 'success');
  // Ganeti calls the source, then the target; neither depends on the other (the source quits only
  // once QEMU reports the transfer completed, the target only checks and resumes its copy), so both
  // run at once: one workflow task less between the transfer and the commit point.
  const [src, dst] = patched(FINALIZE_TOGETHER)
    ? await Promise.all([finalizeSrc(), finalizeDst()])
    : [await finalizeSrc(), await finalizeDst()];
  const errs = [src.ok ? null : `${S}: ${src.msg}`, dst.ok ? null : `${T}: ${dst.msg}`].filter((m) => m !== null);
  if (errs.length) throw execFailure(`Could not finalize instance migration: ${errs.join(' ')}`);

  // M12: the only configuration change
  x.op.step('commit');
  await x.setPrimary(S, T);
  if (patched(AT_ONCE)) {
    // M13 while the reservation is released (a release never fails the operation).
    x.op.step('close-source');
    const released = x.releaseReservation();
    try {
      await closeInstanceDisks(x, S);
    } finally {
      await released;
    }
  } else {
    await x.releaseReservation();
    // M13: demote the old primary
    x.op.step('close-source');
    await closeInstanceDisks(x, S);
  }

  // M14
  if (isDrbd(inst)) {
    x.op.step('final-sync');
    await waitUntilSync(x);
    await reconnectSingleMaster(x, { standalone: 'final-standalone', reconnect: 'single-master', sync: 'settle-sync' });
  } else {
    x.op.step('open-exclusive');
    await openInstanceDisks(x, T, true);
  }
}

function progressLinesOf(r: RpcFailure): string[] {
  if (r.type !== ActivityFailure.MigrationFailed) return [];
  return ((r.details?.[0] ?? {}) as Partial<MigrationFailureDetails>).lines ?? [];
}

async function abortAndFail(x: Exec, t: Transfer, line: string, error: string): Promise<never> {
  x.op.fb(line);
  await CancellationScope.nonCancellable(() => compensate(x, t));
  throw execFailure(error);
}

async function compensate(x: Exec, t: Transfer): Promise<void> {
  x.op.beginCompensation('aborting');
  const r = await abortMigration(x, t);
  if (r.dst !== null || r.src !== null) x.op.needsHuman(`run '${cleanupCommand(x.inst.name)}'`);
  x.op.beginCompensation('reverting');
  try {
    await revertDiskStatus(x);
  } catch (e) {
    throw leftForCleanup(x, e);
  }
  x.op.compensated([...DISK_STEPS, ...TRANSFER_STEPS]);
}

/**
 * Before a transfer is undone, the source is asked whether it completed after all (the wait failed
 * or was cancelled, yet QEMU may have finished): then the target holds the only current state, and
 * the migration rolls forward instead (a deviation from Ganeti, which would resume the stale source).
 */
async function transferCompleted(x: Exec): Promise<boolean> {
  if (!patched('completed-transfer-rolls-forward')) return false;
  const S = x.source;
  const st = await CancellationScope.nonCancellable(() =>
    x.rpc.call(S, 'instanceGetMigrationStatus', [ri(x, S)], 'before aborting', { probe: true }),
  );
  if (!st.ok || st.payload.status !== 'completed') return false;
  x.op.fb(`* the memory transfer to ${x.target} had completed after all: rolling forward`);
  return true;
}

/** `_AbortMigration`: finalize with failure on both sides; never raises (failures go to the log). */
export async function abortMigration(x: Exec, t: Transfer): Promise<{ dst: string | null; src: string | null }> {
  const { source: S, target: T } = x;
  const dst = await x.rpc.call(T, 'instanceFinalizeMigrationDst', [ri(x, T), t.info, false], 'abort');
  if (!dst.ok) log.error(`Aborting migration failed on target node ${T}: ${dst.msg}`);
  const src = await x.rpc.call(S, 'instanceFinalizeMigrationSrc', [ri(x, S), false, t.live], 'abort');
  if (!src.ok) log.error(`Aborting migration failed on source node ${S}: ${src.msg}`);
  return { dst: dst.ok ? null : dst.msg, src: src.ok ? null : src.msg };
}

/** `_RevertDiskStatus`: demote the target and bring DRBD back to single-master with the source Primary. */
export async function revertDiskStatus(x: Exec): Promise<void> {
  await closeInstanceDisks(x, x.target);
  if (!isDrbd(x.inst)) {
    await openInstanceDisks(x, x.source, true);
    return;
  }
  try {
    await reconnectSingleMaster(x);
  } catch (e) {
    if (!isExecFailure(e)) throw e;
    x.op.warn(`Migration failed and I can't reconnect the drives, please try to recover the instance manually; error '${e.message}'`);
    x.op.needsHuman(`run '${cleanupCommand(x.inst.name)}'`);
  }
}
