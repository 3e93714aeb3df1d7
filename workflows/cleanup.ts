/**
 * TLMigrateInstance._ExecCleanup (docs/behaviour.md §7 "Migration cleanup"): find where the instance
 * really runs, abort a half-done migration if it runs on both nodes, fix the configuration, rebuild
 * the DRBD roles.
 *
 * Deliberate deviations (docs/behaviour.md §13.1 "Deliberate changes"): adoption of an instance found
 * on an unexpected node is refused for DRBD (that node holds no disk of it); a copy on an unexpected
 * node next to one on the source or target is refused rather than ignored; and externally mirrored
 * disks are opened exclusively on the node that actually runs the instance (Ganeti's quirk 3 opens
 * them on the stale primary).
 */
import { CancellationScope, patched } from '@temporalio/workflow';
import { isDrbd } from '../domain/instance.js';
import { cleanupCommand } from '../domain/naming.js';
import { closeInstanceDisks, openInstanceDisks, reconnectSingleMaster, waitUntilSync } from './disks.js';
import { ri, type Exec } from './exec.js';
import { abortMigration, type Transfer } from './migration.js';
import { execFailure, isExecFailure } from './operation.js';

/** The hypervisor list names that count as the instance (Xen renames it during migration). */
const runsHere = (names: string[], inst: string): boolean =>
  names.some((n) => n === inst || n === `${inst}--incoming` || n === `${inst}--migratedaway`);

async function locate(x: Exec): Promise<string[]> {
  x.op.step('locate');
  x.op.fb('* checking where the instance actually runs (if this hangs, the hypervisor might be in a bad state)');
  const nodes = Object.values(x.snap.nodes)
    .filter((n) => !n.offline)
    .map((n) => n.name)
    .sort();
  const lists = await x.rpc.all(nodes, 'instanceList', () => []);
  const running: string[] = [];
  lists.forEach((r, i) => {
    if (!r.ok) throw execFailure(`Can't contact node ${nodes[i]}: ${r.msg}`);
    if (runsHere(r.payload, x.inst.name)) running.push(nodes[i]!);
  });
  x.op.fb(`* instance running on: ${running.join(', ')}`);
  return running;
}

/**
 * Not in Ganeti (which aborts, killing the running target and resuming the stale source): a source
 * in post-migrate state means the memory transfer completed and the target's copy is the current one.
 */
async function sourceReportsCompleted(x: Exec): Promise<boolean> {
  const st = await x.rpc.call(x.source, 'instanceGetMigrationStatus', [ri(x, x.source)], 'completed?', { probe: true });
  return st.ok && st.payload.status === 'completed';
}

/** M11 after the fact: the source finalized as a success (its stale copy stops), the target resumed. */
async function finishCompletedTransfer(x: Exec, t: Transfer, again: string): Promise<void> {
  const { source: S, target: T } = x;
  x.op.fb(`* the memory transfer to ${T} had completed: the copy on ${T} is the current one, finishing the migration`);
  const src = await x.rpc.call(S, 'instanceFinalizeMigrationSrc', [ri(x, S), true, t.live], 'success');
  const dst = await x.rpc.call(T, 'instanceFinalizeMigrationDst', [ri(x, T), t.info, true], 'success');
  const errs = [src.ok ? null : `${S}: ${src.msg}`, dst.ok ? null : `${T}: ${dst.msg}`].filter((m) => m !== null);
  if (errs.length) refuse(x, `Could not finalize instance migration: ${errs.join(' ')}`, `fix the cause, ${again}`);
}

/** A refusal that leaves the instance for a human, with what to do. */
function refuse(x: Exec, message: string, repair: string): never {
  x.op.needsHuman(repair);
  throw execFailure(message);
}

/** Returns the execution as it ended (its target is the node found running the instance). */
export async function execCleanup(x: Exec, o: { live: boolean }): Promise<Exec> {
  const running = await locate(x);
  // Locating changes nothing; from here on the cleanup changes the cluster and rolls forward.
  x.op.abortIfRequested();
  x.op.passPointOfNoReturn('the cleanup has started changing the cluster');
  return CancellationScope.nonCancellable(() => reconcile(x, running, o.live));
}

async function reconcile(x: Exec, found: string[], live: boolean): Promise<Exec> {
  const S = x.source;
  const again = `then run '${cleanupCommand(x.inst.name)}' again`;
  let running = found;

  // C2: on both: abort the migration — or finish it, if the memory transfer had completed — then look again
  if (running.includes(S) && running.includes(x.target)) {
    x.op.step('abort-migration');
    x.op.fb('Trying to cleanup after failed migration');
    const info = await x.rpc.call(S, 'migrationInfo', [ri(x, S)]);
    if (!info.ok) throw execFailure(`Failed fetching source migration information from ${S}: ${info.msg}`);
    const t = { info: info.payload, live };
    if (patched('cleanup-completed-transfer-rolls-forward') && (await sourceReportsCompleted(x))) {
      await finishCompletedTransfer(x, t, again);
    } else {
      const r = await abortMigration(x, t);
      if (r.dst !== null || r.src !== null) {
        refuse(
          x,
          `Instance migration cleanup failed: ${[r.dst, r.src].filter((m) => m !== null).join(',')}`,
          `make sure ${x.inst.name} runs on one node only (${S} or ${x.target}), ${again}`,
        );
      }
    }
    running = await locate(x);
  }

  // C3
  if (running.includes(S) && running.includes(x.target)) {
    refuse(
      x,
      'Instance seems to be running on two nodes, or the hypervisor is confused; you will have to ensure manually ' +
        'that it runs only on one and restart this operation',
      `stop ${x.inst.name} on ${S} or ${x.target} by hand, ${again}`,
    );
  }

  // Not in Ganeti: a copy on a third node next to the source or target would be lost track of.
  const elsewhere = running.filter((n) => n !== S && n !== x.target);
  if (elsewhere.length > 0 && (running.includes(S) || running.includes(x.target))) {
    refuse(
      x,
      `Instance runs on ${running.join(', ')}: besides ${running.includes(S) ? S : x.target} it also runs on ` +
        `unexpected node(s) ${elsewhere.join(', ')}; stop the extra copies by hand and run the cleanup again`,
      `stop ${x.inst.name} on ${elsewhere.join(', ')} by hand, ${again}`,
    );
  }

  // C4: on neither: adopt a single unexpected node
  let onTarget = running.includes(x.target);
  if (!running.includes(S) && !onTarget) {
    if (running.length !== 1) {
      refuse(
        x,
        "Instance does not seem to be running at all; in this case it's safer to repair by running " +
          "'gnt-instance stop' to ensure disk shutdown, and then restarting it",
        running.length === 0
          ? `${x.inst.name} runs nowhere: fail it over ('ganeti-temporal instance failover ${x.inst.name}') to start it on ${x.target}, or start it on ${S}`
          : `stop the copies on ${running.join(', ')} by hand, ${again}`,
      );
    }
    const found1 = running[0]!;
    if (isDrbd(x.inst)) {
      refuse(
        x,
        `Instance runs on ${found1}, which holds none of its DRBD disks (they are on ${[S, x.target].join(' and ')}); ` +
          'it cannot be adopted there: stop that copy by hand and run the cleanup again',
        `stop ${x.inst.name} on ${found1} by hand, ${again}`,
      );
    }
    x.op.fb(`* instance running on unexpected node (${found1}), updating as the new secondary`);
    x = x.withTarget(found1);
    onTarget = true;
  }

  // C5: fix the configuration
  x.op.step('commit');
  let demoted: string;
  let primary: string;
  if (onTarget) {
    x.op.fb(`* instance running on secondary node (${x.target}), updating config`);
    await x.setPrimary(S, x.target);
    demoted = S;
    primary = x.target;
  } else {
    x.op.fb(`* instance confirmed to be running on its primary node (${S})`);
    demoted = x.target;
    primary = S;
  }

  try {
    // C6
    x.op.step('close-demoted');
    await closeInstanceDisks(x, demoted);
    // C7
    if (isDrbd(x.inst)) {
      x.op.step('sync');
      try {
        await waitUntilSync(x);
      } catch (e) {
        if (!isExecFailure(e)) throw e; // a StandAlone device cannot sync: expected here
      }
      await reconnectSingleMaster(x, { standalone: 'standalone', reconnect: 'single-master', sync: 'final-sync' });
    } else {
      x.op.step('open-exclusive');
      await openInstanceDisks(x, primary, true);
    }
  } catch (e) {
    if (isExecFailure(e)) x.op.needsHuman(`fix the cause, then run '${cleanupCommand(x.inst.name)}' again`);
    throw e;
  }
  x.op.fb('* done');
  return x;
}
