/**
 * Drives the pure `checkPrereq`: gathers exactly the facts it asks for (node RPCs, the atomic memory
 * reservation) and calls it again until it decides. Nothing is changed here except the reservation,
 * which the operation releases on every exit path.
 */
import { patched } from '@temporalio/workflow';
import {
  checkPrereq,
  readAheadFacts,
  type FactRequest,
  type Facts,
  type MigrationPlan,
  type PrereqRequest,
  type RpcResult,
} from '../domain/prereq.js';
import { rpcInstanceFor } from '../domain/instance.js';
import type { OrchestratorActivities } from '../activities/index.js';
import type { ClusterSnapshot } from '../domain/types.js';
import { opFailure, type Operation } from './operation.js';
import type { NodeRpcClient } from './rpc.js';

export async function runPrereqs(
  op: Operation,
  snap: ClusterSnapshot,
  req: PrereqRequest,
  rpc: NodeRpcClient,
  cfg: OrchestratorActivities,
  onReserve: () => void,
): Promise<MigrationPlan> {
  const facts: Facts = {};
  let first = true;
  for (;;) {
    const out = checkPrereq(snap, req, facts);
    if (out.status === 'ok') {
      out.plan.feedback.forEach((l) => op.fb(l));
      return out.plan;
    }
    if (out.status === 'failed') {
      out.feedback.forEach((l) => op.fb(l));
      throw opFailure(out.error, op.feedback);
    }
    if (out.facts.some((f) => f.kind === 'reserve-memory')) onReserve();
    const round = first && patched(READ_AHEAD) ? withReadAhead(out.facts, readAheadFacts(snap, req)) : out.facts;
    first = false;
    const got = await Promise.all(round.map((f) => gatherFact(f, snap, req.instance, rpc, cfg)));
    round.forEach((f, i) => (facts[f.key] = got[i]!));
  }
}

/**
 * Read-only RPCs whose answers a later step will need are sent together with the RPCs needed now
 * (the prerequisites' read-ahead facts; the migration's M1, M2 and M4): fewer round trips through
 * the server, the same verdicts (docs/behaviour.md §13.1). Histories before it: one at a time.
 */
export const READ_AHEAD = 'read-ahead';

/** The round's facts, then the read-ahead ones it does not already ask for. */
function withReadAhead(now: FactRequest[], ahead: FactRequest[]): FactRequest[] {
  return [...now, ...ahead.filter((a) => !now.some((f) => f.key === a.key))];
}

/** One fact a pure prerequisite check asked for, about `instance` (which exists in `snap`). */
export async function gatherFact(
  f: FactRequest,
  snap: ClusterSnapshot,
  instance: string,
  rpc: NodeRpcClient,
  cfg: OrchestratorActivities,
): Promise<RpcResult> {
  const inst = snap.instances[instance]!;
  switch (f.kind) {
    case 'reservations':
      return { ok: true, payload: await cfg.reservedMemory() };
    case 'reserve-memory': {
      const ni = await rpc.call(f.node, 'nodeInfo', []);
      if (!ni.ok) return ni;
      const r = await cfg.reserveTargetMemory({
        node: f.node,
        instance: inst.name,
        needed: f.needed,
        wanted: f.wanted,
        reportedFree: ni.payload.memoryFree,
      });
      return { ok: true, payload: r };
    }
    case 'rpc':
      switch (f.rpc) {
        case 'node_info':
          return rpc.call(f.node, 'nodeInfo', []);
        case 'bridges_exist':
          return rpc.call(f.node, 'bridgesExist', [f.bridges]);
        case 'instance_migratable':
          return rpc.call(f.node, 'instanceMigratable', [rpcInstanceFor(snap, inst, f.node)]);
        case 'instance_info':
          return rpc.call(f.node, 'instanceInfo', [rpcInstanceFor(snap, inst, f.node)]);
      }
  }
}
