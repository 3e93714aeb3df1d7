/**
 * TLMigrateInstance._ExecFailover (docs/behaviour.md §8 "Failover", steps F0–F7): check the target's
 * disks, shut the instance down on the source, deactivate the disks everywhere, swap the primary, and
 * — only if the instance is marked up — activate the disks with the target as primary and start it
 * there.
 * Failover is never live and has no rollback; a failed start leaves the primary swapped and the disks
 * deactivated (Ganeti's watcher, or an operator with `instance start`, starts it again).
 */
import { CancellationScope } from '@temporalio/workflow';
import { isDrbd } from '../domain/instance.js';
import { startCommand } from '../domain/naming.js';
import { assembleInstanceDisks, closeInstanceDisks, diskConsistentOn, shutdownInstanceDisks } from './disks.js';
import { ri, type Exec } from './exec.js';
import { execFailure, isExecFailure } from './operation.js';

export interface FailoverOptions {
  shutdownTimeout: number;
  reason: string;
  /** Ganeti's ignore_consistency: degraded target disks and source shutdown/close failures are warnings. */
  ignoreConsistency: boolean;
}

const offline = (x: Exec, node: string): boolean => x.snap.nodes[node]?.offline ?? false;

export async function execFailover(x: Exec, o: FailoverOptions): Promise<void> {
  const { source: S, target: T } = x;
  const name = x.inst.name;

  // F0: a forthcoming instance exists only in the configuration
  if (x.inst.forthcoming) {
    x.op.fb('Instance is forthcoming, just updating the  configuration');
    x.op.step('commit');
    await x.setPrimary(S, T);
    await x.releaseReservation();
    return;
  }

  // F2: disk consistency on the target, only if the disks are active
  x.op.step('disk-consistency');
  if (x.inst.disksActive) {
    x.op.fb('* checking disk consistency between source and target');
    for (let i = 0; i < x.inst.disks.length; i++) {
      if (await diskConsistentOn(x, T, i)) continue;
      if (offline(x, S)) x.op.fb(`Node ${S} is offline, ignoring degraded disk ${i} on target node ${T}`);
      else if (!o.ignoreConsistency) throw execFailure(`Disk ${i} is degraded on target node, aborting failover`);
    }
  } else {
    x.op.fb('* not checking disk consistency as instance is not running');
  }

  // From the shutdown on there is no way back: the failover rolls forward.
  x.op.abortIfRequested();
  x.op.passPointOfNoReturn(`the instance is being shut down on ${S}`);
  await CancellationScope.nonCancellable(async () => {
    await shutdownOnSource(x, o);
    try {
      await moveInstance(x, o);
    } catch (e) {
      if (isExecFailure(e) && !x.op.needsOperator) {
        // Past the swap the target is the primary: starting it there repairs; another failover would move it back.
        x.op.needsHuman(
          x.inst.primaryNode === T
            ? `fix the cause, then run '${startCommand(name)}' to start it on ${T}`
            : `fix the cause, then run 'ganeti-temporal instance failover ${name}' again`,
        );
      }
      throw e;
    }
  });
}

/** F3: shut the instance down on the source (soft, then forced after the timeout). */
async function shutdownOnSource(x: Exec, o: FailoverOptions): Promise<void> {
  const S = x.source;
  const name = x.inst.name;
  x.op.step('shutdown');
  x.op.fb('* shutting down instance on source node');
  const down = await x.rpc.call(S, 'instanceShutdown', [ri(x, S), o.shutdownTimeout, o.reason], `timeout ${o.shutdownTimeout} s`, {
    minTimeoutSec: o.shutdownTimeout + 60,
  });
  if (down.ok) return;
  if (o.ignoreConsistency || offline(x, S)) {
    x.op.warn(
      `Could not shutdown instance ${name} on node ${S}, proceeding anyway; please make sure node ${S} is down; error details: ${down.msg}`,
    );
  } else {
    throw execFailure(`Could not shutdown instance ${name} on node ${S}: ${down.msg}`); // nothing changed yet
  }
}

/** F4–F7: close (sharedfile), deactivate, swap, activate and start. */
async function moveInstance(x: Exec, o: FailoverOptions): Promise<void> {
  const { source: S, target: T } = x;
  const name = x.inst.name;
  // F4: externally mirrored disks are closed on the source
  if (!isDrbd(x.inst)) {
    x.op.step('close-source');
    await closeInstanceDisks(x, S, o.ignoreConsistency);
  }

  // F5: deactivate the disks on all nodes (failures on the primary are ignored)
  x.op.step('deactivate-disks');
  x.op.fb("* deactivating the instance's disks on source node");
  if (!(await shutdownInstanceDisks(x, true))) throw execFailure("Can't shut down the instance's disks");

  // F6: the primary swap
  x.op.step('commit');
  await x.setPrimary(S, T);

  // F7: start on the target only if the instance is marked up
  if (x.inst.adminState === 'up') {
    x.op.step('activate-disks');
    x.op.fb(`* activating the instance's disks on target node ${T}`);
    if (!(await assembleInstanceDisks(x, { ignoreSecondaries: true }))) {
      await shutdownInstanceDisks(x, false);
      throw execFailure("Can't activate the instance's disks");
    }
    x.op.step('start');
    x.op.fb(`* starting the instance on the target node ${T}`);
    const started = await x.rpc.call(T, 'instanceStart', [ri(x, T), o.reason]);
    if (!started.ok) {
      await shutdownInstanceDisks(x, false);
      throw execFailure(`Could not start instance ${name} on node ${T}: ${started.msg}`);
    }
  }
  // Started (or, for an instance marked down, moved): the target holds it, no reservation needed.
  await x.releaseReservation();
}
