/**
 * Ganeti's shared disk routines (docs/behaviour.md §5.1 "Shared disk routines"): close/open instance
 * disks, standalone, reconnect, wait until sync. Each prints its feedback line and raises Ganeti's
 * Exec error.
 */
import type { StepKey } from '../domain/plan.js';
import { CancellationScope, isCancellation, patched } from '@temporalio/workflow';
import { mergeSyncProgress } from '../domain/feedback.js';
import { instanceNodes, isDrbd } from '../domain/instance.js';
import { allNodes, ri, type Exec } from './exec.js';
import { execFailure } from './operation.js';
import type { RpcFailure } from './rpc.js';

/** Ganeti's "Raise(msg)" for each failed per-node result, in node order. */
function raiseFirst(nodes: string[], results: Array<{ ok: boolean } | RpcFailure>, msg: (node: string) => string): void {
  results.forEach((r, i) => {
    if (!r.ok) throw execFailure(`${msg(nodes[i]!)}: ${(r as RpcFailure).msg}`);
  });
}

/** Closes the disks on `node`; with `proceedAnyway` (failover's ignore_consistency) a failure is a warning. */
export async function closeInstanceDisks(x: Exec, node: string, proceedAnyway = false): Promise<void> {
  x.op.fb(`* closing instance disks on node ${node}`);
  const r = await x.rpc.call(node, 'blockdevClose', [ri(x, node)]);
  if (r.ok) return;
  if (r.offline || proceedAnyway) x.op.warn(`Could not close instance disks on node ${node}, proceeding anyway`);
  else throw execFailure(`Cannot close instance disks on node ${node}: ${r.msg}`);
}

export async function openInstanceDisks(x: Exec, node: string, exclusive: boolean): Promise<void> {
  const mode = exclusive ? 'exclusive' : 'shared';
  x.op.fb(`* opening instance disks on node ${node} in ${mode} mode`);
  const r = await x.rpc.call(node, 'blockdevOpen', [ri(x, node), exclusive], mode);
  if (!r.ok) throw execFailure(`Cannot open instance disks on node ${node}: ${r.msg}`);
}

export async function goStandalone(x: Exec): Promise<void> {
  x.op.fb('* changing into standalone mode');
  const nodes = allNodes(x);
  const rs = await x.rpc.all(nodes, 'drbdDisconnectNet', (n) => [ri(x, n)]);
  raiseFirst(nodes, rs, (n) => `Cannot disconnect disks node ${n}`);
}

export async function goReconnect(x: Exec, multimaster: boolean): Promise<void> {
  const mode = multimaster ? 'dual-master' : 'single-master';
  x.op.fb(`* changing disks into ${mode} mode`);
  const nodes = allNodes(x);
  const rs = await x.rpc.all(nodes, 'drbdAttachNet', (n) => [ri(x, n), multimaster], mode);
  raiseFirst(nodes, rs, (n) => `Cannot change disks config on node ${n}`);
}

/**
 * Both nodes wait (heartbeating) until no device resyncs; the progress lines are merged as Ganeti's
 * loop prints them. As in Ganeti's loop, one node's failure ends the wait: the other node's wait
 * (possibly hours of resync) is cancelled rather than waited for.
 */
export async function waitUntilSync(x: Exec): Promise<void> {
  x.op.fb('* wait until resync is done');
  const nodes = allNodes(x);
  const pollMs = x.snap.cluster.timing.syncPollMs;
  if (!patched('wait-sync-fails-fast')) {
    // Histories recorded before the patch: both waits always ran to their end.
    const rs = await Promise.all(nodes.map((n) => x.rpc.wait(n, 'waitForDiskSync', [ri(x, n), { pollMs }])));
    mergeSyncProgress(
      rs.map((r) => (r.ok ? r.payload.samples : [])),
      pollMs,
    ).forEach((l) => x.op.fb(l));
    raiseFirst(nodes, rs, (n) => `Cannot resync disks on node ${n}`);
    return;
  }
  // A scope of its own (a child of the current one, so an operator's abort still reaches it).
  const waits = new CancellationScope();
  let failedFast = false;
  const rs = await waits.run(() =>
    Promise.all(
      nodes.map(async (n) => {
        try {
          const r = await x.rpc.wait(n, 'waitForDiskSync', [ri(x, n), { pollMs }]);
          if (!r.ok && !failedFast) {
            failedFast = true;
            waits.cancel();
          }
          return r;
        } catch (e) {
          // Cancelled because the other node failed (an operator's abort still propagates).
          if (failedFast && isCancellation(e) && !CancellationScope.current().parent?.consideredCancelled) return null;
          throw e;
        }
      }),
    ),
  );
  const samples = rs.map((r) => (r?.ok ? r.payload.samples : []));
  mergeSyncProgress(samples, pollMs).forEach((l) => x.op.fb(l));
  const done = rs.flatMap((r, i) => (r ? [{ node: nodes[i]!, r }] : []));
  raiseFirst(
    done.map((d) => d.node),
    done.map((d) => d.r),
    (n) => `Cannot resync disks on node ${n}`,
  );
}

/**
 * Back to single-master DRBD, in sync: standalone, reconnect single-master, wait until synced
 * (the tail of M14, of the cleanup's C7 and of `_RevertDiskStatus`). `steps` names the checklist
 * steps to mark, if any.
 */
export async function reconnectSingleMaster(x: Exec, steps?: { standalone: StepKey; reconnect: StepKey; sync: StepKey }): Promise<void> {
  if (steps) x.op.step(steps.standalone);
  await goStandalone(x);
  if (steps) x.op.step(steps.reconnect);
  await goReconnect(x, false);
  if (steps) x.op.step(steps.sync);
  await waitUntilSync(x);
}

/**
 * Ganeti's disk consistency check on a non-primary node (docs/behaviour.md §11.4 "Disk consistency"):
 * only DRBD devices are assembled there.
 */
export async function diskConsistentOn(x: Exec, node: string, index: number): Promise<boolean> {
  if (!isDrbd(x.inst)) return true;
  return diskConsistent(x, node, await findDisk(x, node, index));
}

/** blockdev_find of disk `index` on `node` (read-only). */
export function findDisk(x: Exec, node: string, index: number) {
  return x.rpc.call(node, 'blockdevFind', [ri(x, node), index], `disk ${index}`);
}

/** What `findDisk` answered, judged as Ganeti's consistency check does (with its warnings). */
export function diskConsistent(x: Exec, node: string, r: Awaited<ReturnType<typeof findDisk>>): boolean {
  if (!r.ok) {
    x.op.warn(`Can't find disk on node ${node}: ${r.msg}`);
    return false;
  }
  if (!r.payload) {
    x.op.warn(`Can't find disk on node ${node}`);
    return false;
  }
  return !r.payload.isDegraded;
}

/** The nodes holding the instance's disks (DRBD: both ends; otherwise the primary). */
const diskNodes = (x: Exec): string[] => (isDrbd(x.inst) ? instanceNodes(x.inst) : [x.inst.primaryNode]);

/**
 * ShutdownInstanceDisks: disks_active := false first, then blockdev_shutdown on every node of the
 * disks. A failure is fatal only on a non-primary node that is not offline (with `ignorePrimary`,
 * failures on the primary are ignored too).
 */
export async function shutdownInstanceDisks(x: Exec, ignorePrimary: boolean): Promise<boolean> {
  await x.setDisksActive(false);
  const nodes = diskNodes(x);
  const rs = await x.rpc.all(nodes, 'blockdevShutdown', (n) => [ri(x, n)]);
  let ok = true;
  rs.forEach((r, i) => {
    if (r.ok) return;
    const node = nodes[i]!;
    x.inst.disks.forEach((_d, d) => x.op.warn(`Could not shutdown block device disk/${d} on node ${node}: ${r.msg}`));
    const isPrimary = node === x.inst.primaryNode;
    if (!r.offline && !(isPrimary && ignorePrimary)) ok = false;
  });
  return ok;
}

/**
 * AssembleInstanceDisks: disks_active := true; pass 1 assembles every node in the secondary role
 * (with `ignoreSecondaries`, as failover's F7 asks, failures on secondaries are warnings; without it,
 * as `instance start` without --force asks, only a failure on an offline secondary is); for DRBD,
 * wait for the handshake on the secondaries; pass 2 assembles the primary in the primary role.
 */
export async function assembleInstanceDisks(x: Exec, o: { ignoreSecondaries: boolean }): Promise<boolean> {
  await x.setDisksActive(true);
  const primary = x.inst.primaryNode;
  const nodes = diskNodes(x);
  let ok = true;
  const pass1 = await x.rpc.all(nodes, 'blockdevAssemble', (n) => [ri(x, n), false], 'secondary');
  pass1.forEach((r, i) => {
    if (r.ok) return;
    const node = nodes[i]!;
    x.inst.disks.forEach((_d, d) =>
      x.op.warn(`Could not prepare block device disk/${d} on node ${node} (is_primary=False, pass=1): ${r.msg}`),
    );
    if (node === primary || !(o.ignoreSecondaries || r.offline)) ok = false;
  });
  if (!ok) return false;
  if (isDrbd(x.inst)) {
    const secondaries = nodes.filter((n) => n !== primary);
    const syncs = await x.rpc.all(secondaries, 'drbdWaitSync', (n) => [ri(x, n)]);
    syncs.forEach((r, i) => {
      const node = secondaries[i]!;
      if (!r.ok) x.op.warn(`Could not wait for the DRBD handshake on secondary ${node}: ${r.msg}`);
      else if (r.payload.minPercent < 100) x.op.fb(` - INFO: DRBD resync on secondary ${node} at ${r.payload.minPercent.toFixed(1)}%`);
    });
  }
  const pass2 = await x.rpc.call(primary, 'blockdevAssemble', [ri(x, primary), true], 'primary');
  if (!pass2.ok) {
    x.inst.disks.forEach((_d, d) =>
      x.op.warn(`Could not prepare block device disk/${d} on node ${primary} (is_primary=True, pass=2): ${pass2.msg}`),
    );
    return false;
  }
  return true;
}
