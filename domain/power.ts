/**
 * LUInstanceStartup.CheckPrereq and LUInstanceShutdown.CheckPrereq without mutation
 * (docs/behaviour.md §14 "Start and shutdown"), in the style of prereq.ts: pure, asking for the facts
 * it needs (in Ganeti's order) and deciding once it has them.
 */
import { prereqError, type ECode } from './errors.js';
import { requiredBridges } from './instance.js';
import type { FactRequest, Facts, InstanceInfoPayload, MemoryFactPayload, RpcResult } from './prereq.js';
import type { OpError } from './errors.js';
import type { ClusterSnapshot } from './types.js';

export interface PowerRequest {
  kind: 'start' | 'shutdown';
  instance: string;
}

export interface PowerPlan {
  kind: 'start' | 'shutdown';
  instance: string;
  /** The primary node: where the instance is started or shut down. */
  node: string;
  /** Start: the primary already runs the instance (nothing to start, no memory check). */
  running: boolean;
  /** Start: free memory on the primary (after other operations' reservations), if checked. */
  freeMemory: number | null;
  /** Start: memory reserved on the primary by this operation (released once the instance runs). */
  reservedMemory: number;
  feedback: string[];
}

export type PowerOutcome =
  { status: 'need'; facts: FactRequest[] } | { status: 'failed'; error: OpError; feedback: string[] } | { status: 'ok'; plan: PowerPlan };

/** Ganeti's INSTANCE_ONLINE, as CheckInstanceState prints it. */
const ONLINE_STATES = 'down, up';

class Need {
  constructor(readonly facts: FactRequest[]) {}
}
class Fail {
  constructor(readonly error: OpError) {}
}

export function checkPowerPrereq(snap: ClusterSnapshot, req: PowerRequest, facts: Facts): PowerOutcome {
  const feedback: string[] = [];
  try {
    return { status: 'ok', plan: run(snap, req, facts, feedback) };
  } catch (e) {
    if (e instanceof Need) return { status: 'need', facts: e.facts };
    if (e instanceof Fail) return { status: 'failed', error: e.error, feedback };
    throw e;
  }
}

function run(snap: ClusterSnapshot, req: PowerRequest, facts: Facts, feedback: string[]): PowerPlan {
  const fail = (message: string, code?: ECode): never => {
    throw new Fail(prereqError(message, code));
  };
  const need = (f: FactRequest): RpcResult => {
    const got = facts[f.key];
    if (!got) throw new Need([f]);
    return got;
  };

  const inst = snap.instances[req.instance];
  if (!inst) return fail(`Instance '${req.instance}' not known`, 'unknown_entity');
  if (inst.forthcoming) return fail('forthcoming instances not supported for this operation');
  const node = inst.primaryNode;
  const plan: PowerPlan = { kind: req.kind, instance: inst.name, node, running: false, freeMemory: null, reservedMemory: 0, feedback };

  // CheckInstanceState(INSTANCE_ONLINE)
  if (inst.adminState === 'offline') {
    return fail(`Instance '${inst.name}' is marked to be offline, can't use instance from outside ${ONLINE_STATES} states`, 'wrong_state');
  }
  // CheckNodeOnline (ignore_offline_nodes is not offered)
  if (snap.nodes[node]?.offline) return fail(`Can't use offline node ${node}`, 'wrong_state');
  if (req.kind === 'shutdown') return plan;

  // CheckInstanceBridgesExist on the primary
  const bridges = requiredBridges(inst);
  if (bridges.length > 0) {
    const r = need({ key: `bridges_exist:${node}`, kind: 'rpc', rpc: 'bridges_exist', node, bridges });
    if (!r.ok) return fail(`Error checking bridges on destination node '${node}': ${r.msg}`, 'environment_error');
  }

  // Is it running already?
  const info = need({ key: `instance_info:${node}`, kind: 'rpc', rpc: 'instance_info', node });
  if (!info.ok) return fail(`Error checking node ${node}: ${info.msg}`, 'environment_error');
  if (info.payload as InstanceInfoPayload | null) {
    plan.running = true;
    return plan;
  }

  // CheckNodeFreeMemory (reserved atomically, so concurrent operations cannot overcommit the node)
  const r = need({ key: `memory:${node}`, kind: 'reserve-memory', node, needed: inst.beparams.minmem, wanted: inst.beparams.maxmem });
  if (!r.ok) return fail(`Can't get data from node ${node}: ${r.msg}`, 'environment_error');
  const m = r.payload as MemoryFactPayload;
  if (!Number.isInteger(m.free)) {
    return fail(`Can't compute free memory on node ${node}, result was '${String(m.free)}'`, 'environment_error');
  }
  if (inst.beparams.minmem > m.free) {
    return fail(
      `Not enough memory on node ${node} for starting instance ${inst.name}: needed ${inst.beparams.minmem} MiB, available ${m.free} MiB`,
      'insufficient_resources',
    );
  }
  plan.freeMemory = m.free;
  plan.reservedMemory = m.reserved;
  return plan;
}
