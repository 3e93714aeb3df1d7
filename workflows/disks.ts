/**
 * Ganeti's shared disk routines (docs/behaviour.md §5.1 "Shared disk routines"): close/open instance
 * disks, standalone, reconnect, wait until sync. Each prints its feedback line and raises Ganeti's
 * Exec error.
 */
import type { OrchestratorActivities } from '../activities/index.js';
import { mergeSyncProgress } from '../domain/feedback.js';
import { isDrbd, rpcInstanceFor, type RpcInstance } from '../domain/instance.js';
import type { ClusterSnapshot, Instance } from '../domain/types.js';
import { execFailure, type Operation } from './operation.js';
import type { NodeRpcClient, RpcFailure } from './rpc.js';

/** Everything an executing operation works with. */
export interface Exec {
  op: Operation;
  rpc: NodeRpcClient;
  cfg: OrchestratorActivities;
  snap: ClusterSnapshot;
  inst: Instance;
  source: string;
  target: string;
  live: boolean;
  /** Failover's ignore_consistency (migration never sets it). */
  ignoreConsistency: boolean;
}

export const ri = (x: Exec, node: string): RpcInstance => rpcInstanceFor(x.snap, x.inst, node);
export const allNodes = (x: Exec): string[] => [x.source, x.target];

/** Ganeti's "Raise(msg)" for each failed per-node result, in node order. */
function raiseFirst(nodes: string[], results: Array<{ ok: boolean } | RpcFailure>, msg: (node: string) => string): void {
  results.forEach((r, i) => {
    if (!r.ok) throw execFailure(`${msg(nodes[i]!)}: ${(r as RpcFailure).msg}`);
  });
}

export async function closeInstanceDisks(x: Exec, node: string): Promise<void> {
  x.op.fb(`* closing instance disks on node ${node}`);
  const r = await x.rpc.call(node, 'normal', 'blockdevClose', [ri(x, node)]);
  if (r.ok) return;
  if (r.offline || x.ignoreConsistency) x.op.warn(`Could not close instance disks on node ${node}, proceeding anyway`);
  else throw execFailure(`Cannot close instance disks on node ${node}: ${r.msg}`);
}

export async function openInstanceDisks(x: Exec, node: string, exclusive: boolean): Promise<void> {
  const mode = exclusive ? 'exclusive' : 'shared';
  x.op.fb(`* opening instance disks on node ${node} in ${mode} mode`);
  const r = await x.rpc.call(node, 'normal', 'blockdevOpen', [ri(x, node), exclusive], mode);
  if (!r.ok) throw execFailure(`Cannot open instance disks on node ${node}: ${r.msg}`);
}

export async function goStandalone(x: Exec): Promise<void> {
  x.op.fb('* changing into standalone mode');
  const nodes = allNodes(x);
  const rs = await x.rpc.all(nodes, 'normal', 'drbdDisconnectNet', (n) => [ri(x, n)]);
  raiseFirst(nodes, rs, (n) => `Cannot disconnect disks node ${n}`);
}

export async function goReconnect(x: Exec, multimaster: boolean): Promise<void> {
  const mode = multimaster ? 'dual-master' : 'single-master';
  x.op.fb(`* changing disks into ${mode} mode`);
  const nodes = allNodes(x);
  const rs = await x.rpc.all(nodes, 'normal', 'drbdAttachNet', (n) => [ri(x, n), multimaster], mode);
  raiseFirst(nodes, rs, (n) => `Cannot change disks config on node ${n}`);
}

/** Both nodes wait (heartbeating) until no device resyncs; the progress lines are merged as Ganeti's loop prints them. */
export async function waitUntilSync(x: Exec): Promise<void> {
  x.op.fb('* wait until resync is done');
  const nodes = allNodes(x);
  const pollMs = x.snap.cluster.timing.syncPollMs;
  const rs = await Promise.all(nodes.map((n) => x.rpc.wait(n, 'waitForDiskSync', [ri(x, n), { pollMs }])));
  const samples = rs.map((r) => (r.ok ? r.payload.samples : []));
  mergeSyncProgress(samples, pollMs).forEach((l) => x.op.fb(l));
  raiseFirst(nodes, rs, (n) => `Cannot resync disks on node ${n}`);
}

/**
 * Back to single-master DRBD, in sync: standalone, reconnect single-master, wait until synced
 * (the tail of M14, of the cleanup's C7 and of `_RevertDiskStatus`). `steps` names the checklist
 * steps to mark, if any.
 */
export async function reconnectSingleMaster(x: Exec, steps?: { standalone: string; reconnect: string; sync: string }): Promise<void> {
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
  const r = await x.rpc.call(node, 'normal', 'blockdevFind', [ri(x, node), index], `disk ${index}`);
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
