/**
 * Drives the pure `checkPrereq`: gathers exactly the facts it asks for (node RPCs, the atomic memory
 * reservation) and calls it again until it decides. Nothing is changed here except the reservation,
 * which the operation releases on every exit path.
 */
import { checkPrereq, type FactRequest, type Facts, type MigrationPlan, type PrereqRequest, type RpcResult } from '../domain/prereq.js';
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
    const got = await Promise.all(out.facts.map((f) => gatherFact(f, snap, req.instance, rpc, cfg)));
    out.facts.forEach((f, i) => (facts[f.key] = got[i]!));
  }
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
