/**
 * TLMigrateInstance._ExecCleanup (behaviour spec §7): find where the instance really runs, abort a
 * half-done migration if it runs on both nodes, fix the configuration, rebuild the DRBD roles.
 *
 * Deliberate deviations (see README): adoption of an instance found on an unexpected node is refused
 * for DRBD (that node holds no disk of it); a copy on an unexpected node next to one on the source or
 * target is refused rather than ignored; and externally mirrored disks are opened exclusively on the
 * node that actually runs the instance (Ganeti's quirk 3 opens them on the stale primary).
 */
import { isDrbd } from '../cluster/instance.js';
import { failMsg } from './rpc.js';
import {
  closeInstanceDisks,
  goReconnect,
  goStandalone,
  openInstanceDisks,
  ri,
  waitUntilSync,
  type Exec,
} from './disks.js';
import { abortMigration } from './migration.js';
import { execFailure, isExecFailure } from './operation.js';

/** The hypervisor list names that count as the instance (Xen renames it during migration). */
const runsHere = (names: string[], inst: string): boolean =>
  names.some((n) => n === inst || n === `${inst}--incoming` || n === `${inst}--migratedaway`);

async function locate(x: Exec): Promise<string[]> {
  x.op.setPhase('locate');
  x.op.fb('* checking where the instance actually runs (if this hangs, the hypervisor might be in a bad state)');
  const nodes = Object.values(x.snap.nodes)
    .filter((n) => !n.offline)
    .map((n) => n.name)
    .sort();
  const lists = await x.rpc.all(nodes, 'urgent', 'instanceList', () => []);
  const running: string[] = [];
  lists.forEach((r, i) => {
    if (!r.ok) throw execFailure(`Can't contact node ${nodes[i]}: ${r.msg}`);
    if (runsHere(r.payload, x.inst.name)) running.push(nodes[i]!);
  });
  x.op.fb(`* instance running on: ${running.join(', ')}`);
  return running;
}

export async function execCleanup(x: Exec): Promise<void> {
  const S = x.source;
  let running = await locate(x);

  // C2: on both: abort the migration, then look again
  if (running.includes(S) && running.includes(x.target)) {
    x.op.setPhase('aborting');
    x.op.fb('Trying to cleanup after failed migration');
    const info = await x.rpc.call(S, 'normal', 'migrationInfo', [ri(x, S)]);
    if (!info.ok) throw execFailure(`Failed fetching source migration information from ${S}: ${info.msg}`);
    const r = await abortMigration(x, info.payload);
    if (r.dst !== null || r.src !== null) {
      throw execFailure(`Instance migration cleanup failed: ${[r.dst, r.src].filter((m) => m !== null).join(',')}`);
    }
    running = await locate(x);
  }

  // C3
  if (running.includes(S) && running.includes(x.target)) {
    throw execFailure(
      'Instance seems to be running on two nodes, or the hypervisor is confused; you will have to ensure manually ' +
        'that it runs only on one and restart this operation',
    );
  }

  // Not in Ganeti: a copy on a third node next to the source or target would be lost track of.
  const elsewhere = running.filter((n) => n !== S && n !== x.target);
  if (elsewhere.length > 0 && (running.includes(S) || running.includes(x.target))) {
    throw execFailure(
      `Instance runs on ${running.join(', ')}: besides ${running.includes(S) ? S : x.target} it also runs on ` +
        `unexpected node(s) ${elsewhere.join(', ')}; stop the extra copies by hand and run the cleanup again`,
    );
  }

  // C4: on neither: adopt a single unexpected node
  let onTarget = running.includes(x.target);
  if (!running.includes(S) && !onTarget) {
    if (running.length !== 1) {
      throw execFailure(
        "Instance does not seem to be running at all; in this case it's safer to repair by running " +
          "'gnt-instance stop' to ensure disk shutdown, and then restarting it",
      );
    }
    const found = running[0]!;
    if (isDrbd(x.inst)) {
      throw execFailure(
        `Instance runs on ${found}, which holds none of its DRBD disks (they are on ${[S, x.target].join(' and ')}); ` +
          'it cannot be adopted there: stop that copy by hand and run the cleanup again',
      );
    }
    x.op.fb(`* instance running on unexpected node (${found}), updating as the new secondary`);
    x.target = found;
    onTarget = true;
  }

  // C5: fix the configuration
  x.op.setPhase('commit');
  let demoted: string;
  let primary: string;
  if (onTarget) {
    x.op.fb(`* instance running on secondary node (${x.target}), updating config`);
    try {
      x.inst = await x.cfg.setInstancePrimary({ instance: x.inst.name, expected: S, primary: x.target });
    } catch (e) {
      throw execFailure(`Could not update the configuration (primary := ${x.target}): ${failMsg(e)}`);
    }
    demoted = S;
    primary = x.target;
  } else {
    x.op.fb(`* instance confirmed to be running on its primary node (${S})`);
    demoted = x.target;
    primary = S;
  }

  // C6
  x.op.setPhase('close-demoted');
  await closeInstanceDisks(x, demoted);

  // C7
  if (isDrbd(x.inst)) {
    x.op.setPhase('wait-sync');
    try {
      await waitUntilSync(x);
    } catch (e) {
      if (!isExecFailure(e)) throw e; // a StandAlone device cannot sync: expected here
    }
    x.op.setPhase('standalone');
    await goStandalone(x);
    x.op.setPhase('single-master');
    await goReconnect(x, false);
    x.op.setPhase('wait-sync');
    await waitUntilSync(x);
  } else {
    x.op.setPhase('open-exclusive');
    await openInstanceDisks(x, primary, true);
  }
  x.op.setPhase('done');
  x.op.fb('* done');
}
