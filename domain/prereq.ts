/**
 * TLMigrateInstance.CheckPrereq without mutation (docs/behaviour.md §3 "Prerequisite checks, in
 * order", §2.1 "Target choice", §1.3 "Argument validation").
 *
 * `checkPrereq(snapshot, request, facts)` is pure. Checks that need a node's answer ask for a *fact*;
 * the caller (the workflow) gathers the facts it is asked for, exactly those and in this order, and
 * calls again with them. The checks therefore run in Ganeti's order and the whole decision is
 * replayable data. An RPC that changes something is sent only when Ganeti would send it; the
 * read-only ones that the checks will ask for unless an earlier one decides first
 * (`readAheadFacts`) may be gathered with the first round, which saves round trips and changes no
 * verdict or message: the checks still read them in Ganeti's order.
 */
import { prereqError, type OpError } from './errors.js';
import { filledHvParams, mirrorKind, requiredBridges, secondaryNodes } from './instance.js';
import type { ClusterSnapshot, Instance, MigrationMode, Node } from './types.js';

/** A node RPC answer as Ganeti's RpcResult: payload, or fail_msg plus the offline flag. */
export type RpcResult<T = unknown> = { ok: true; payload: T } | { ok: false; offline: boolean; msg: string };

export interface NodeInfoPayload {
  memoryTotal: number;
  memoryFree: number;
  memoryDom0: number;
  hvVersion: string;
}
export interface InstanceInfoPayload {
  state: 'running' | 'paused' | 'incoming';
  memory: number;
  vcpus: number;
}
/** Result of the atomic reservation: free memory after other operations' reservations. */
export interface MemoryFactPayload {
  free: number;
  reserved: number;
}

export type FactRequest =
  | { key: string; kind: 'rpc'; rpc: 'node_info' | 'instance_migratable' | 'instance_info'; node: string }
  | { key: string; kind: 'rpc'; rpc: 'bridges_exist'; node: string; bridges: string[] }
  /** node_info on `node`, then an atomic reservation of up to `wanted` MiB if `needed` fits. */
  | { key: string; kind: 'reserve-memory'; node: string; needed: number; wanted: number }
  /** Memory reserved per node by other running operations. */
  | { key: string; kind: 'reservations' };

export type Facts = Record<string, RpcResult>;

export interface PrereqRequest {
  instance: string;
  /** Started as a failover (OpInstanceFailover). */
  failover: boolean;
  cleanup: boolean;
  allowFailover: boolean;
  targetNode?: string | undefined;
  mode?: MigrationMode | undefined;
  live?: boolean | undefined;
  ignoreIpolicy: boolean;
}

export interface MigrationPlan {
  instance: string;
  operation: 'migrate' | 'failover' | 'cleanup';
  /** The operation was asked as a migration and became a failover during the prerequisites. */
  fellBackToFailover: boolean;
  mirror: 'internal' | 'external';
  sourceNode: string;
  targetNode: string;
  mode: MigrationMode | null;
  live: boolean;
  /** Ganeti's tgt_free_mem: free memory on the target (after other reservations), if checked. */
  targetFreeMemory: number | null;
  /** Memory reserved on the target by this operation (released at its end). */
  reservedMemory: number;
  /** Ganeti's current_mem: the running instance's (possibly ballooned) memory. */
  currentMemory: number | null;
  /** The LogInfo / LogWarning lines the checks produced, in order. */
  feedback: string[];
}

export type PrereqOutcome =
  | { status: 'need'; facts: FactRequest[] }
  | { status: 'failed'; error: OpError; feedback: string[] }
  | { status: 'ok'; plan: MigrationPlan };

export const info = (msg: string): string => ` - INFO: ${msg}`;
export const warning = (msg: string): string => ` - WARNING: ${msg}`;

export const ALLOCATOR_NAME = 'most-free-memory';

class Need {
  constructor(readonly facts: FactRequest[]) {}
}
class Fail {
  constructor(readonly error: OpError) {}
}

/** Violations of the target group's instance policy (Ganeti ComputeIPolicyInstanceViolation, reduced). */
export function ipolicyViolations(snap: ClusterSnapshot, inst: Instance, group: string): string[] {
  const pol = snap.cluster.groups[group]?.ipolicy;
  if (!pol) return [];
  const out: string[] = [];
  const { minmem, maxmem, vcpus } = inst.beparams;
  if (minmem < pol.minmem || maxmem > pol.maxmem) {
    out.push(`memory-size value ${minmem}-${maxmem} is not in range [${pol.minmem}, ${pol.maxmem}]`);
  }
  if (vcpus > pol.maxVcpus) out.push(`cpu-count value ${vcpus} is not in range [1, ${pol.maxVcpus}]`);
  if (!pol.diskTemplates.includes(inst.diskTemplate)) {
    out.push(`Disk template ${inst.diskTemplate} is not allowed (allowed templates ${pol.diskTemplates.join(', ')})`);
  }
  return out;
}

/** The built-in allocator: online, non-drained, vm-capable node of the same group with the most free memory. */
export function allocatorCandidates(snap: ClusterSnapshot, inst: Instance): Node[] {
  const group = snap.nodes[inst.primaryNode]?.group;
  return Object.values(snap.nodes)
    .filter((n) => n.name !== inst.primaryNode && n.group === group && !n.offline && !n.drained && n.vmCapable)
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function checkPrereq(snap: ClusterSnapshot, req: PrereqRequest, facts: Facts): PrereqOutcome {
  const feedback: string[] = [];
  try {
    return { status: 'ok', plan: run(snap, req, facts, feedback) };
  } catch (e) {
    if (e instanceof Need) return { status: 'need', facts: e.facts };
    if (e instanceof Fail) return { status: 'failed', error: e.error, feedback };
    throw e;
  }
}

function run(snap: ClusterSnapshot, req: PrereqRequest, facts: Facts, feedback: string[]): MigrationPlan {
  const fail = (message: string, code?: Parameters<typeof prereqError>[1]): never => {
    throw new Fail(prereqError(message, code));
  };
  const need = (f: FactRequest): RpcResult => {
    const got = facts[f.key];
    if (!got) throw new Need([f]);
    return got;
  };

  // ExpandNames
  const inst = snap.instances[req.instance];
  if (!inst) return fail(`Instance '${req.instance}' not known`, 'unknown_entity');
  if (req.targetNode !== undefined && !snap.nodes[req.targetNode]) {
    return fail(`Node '${req.targetNode}' not known`, 'unknown_entity');
  }
  if (inst.forthcoming && !req.failover) return fail('forthcoming instances not supported for this operation');

  let failover = req.failover;
  const cleanup = req.cleanup;
  const source = inst.primaryNode;

  // #2 admin-state fallback
  if (!cleanup && inst.adminState !== 'up' && !failover && req.allowFailover) {
    feedback.push(info('Instance is marked down or offline, fallback allowed, switching to failover'));
    failover = true;
  }

  // #3 disk layout
  const kind = mirrorKind(inst);
  if (kind === 'none') {
    return fail(`Instance's disk layout '${inst.diskTemplate}' does not allow ${failover ? 'failovers' : 'migrations'}`, 'wrong_state');
  }

  // #4 target choice (+ #5 ipolicy)
  let target: string;
  if (kind === 'external') {
    if (req.targetNode !== undefined) {
      target = req.targetNode;
    } else {
      const alloc = snap.cluster.defaultIallocator;
      if (!alloc) {
        return fail(
          'No iallocator or node given and no cluster-wide default iallocator found; please specify either an ' +
            'iallocator or a node, or set a cluster-wide default iallocator',
          'wrong_input',
        );
      }
      target = runAllocator(snap, inst, failover, need, fail);
      feedback.push(info(`Selected nodes for instance ${inst.name} via iallocator ${ALLOCATOR_NAME}: ${target}`));
    }
    checkIpolicy(snap, inst, target, req.ignoreIpolicy, feedback, fail);
    if (target === source) return fail(`Cannot migrate instance ${inst.name} to its primary (${source})`, 'wrong_state');
  } else {
    const [secondary] = secondaryNodes(inst);
    if (secondary === undefined) {
      throw new Fail({ type: 'ConfigurationError', message: `No secondary node but using ${inst.diskTemplate} disk types` });
    }
    if (req.targetNode !== undefined && req.targetNode !== secondary) {
      return fail(
        `Instances with disk types ${inst.diskTemplate} cannot be ${failover ? 'failed over' : 'migrated'} to arbitrary nodes ` +
          '(neither an iallocator nor a target node can be passed)',
        'wrong_input',
      );
    }
    target = secondary;
    checkIpolicy(snap, inst, target, req.ignoreIpolicy, feedback, fail);
  }

  // #6 free memory on the target (reserved atomically so concurrent operations cannot overcommit)
  let targetFreeMemory: number | null = null;
  let reservedMemory = 0;
  if (!cleanup && (!failover || inst.adminState === 'up')) {
    const r = need({
      key: `memory:${target}`,
      kind: 'reserve-memory',
      node: target,
      needed: inst.beparams.minmem,
      wanted: inst.beparams.maxmem,
    });
    if (!r.ok) return fail(`Can't get data from node ${target}: ${r.msg}`, 'environment_error');
    const m = r.payload as MemoryFactPayload;
    if (!Number.isInteger(m.free)) {
      return fail(`Can't compute free memory on node ${target}, result was '${String(m.free)}'`, 'environment_error');
    }
    if (inst.beparams.minmem > m.free) {
      return fail(
        `Not enough memory on node ${target} for migrating instance ${inst.name}: needed ${inst.beparams.minmem} MiB, ` +
          `available ${m.free} MiB`,
        'insufficient_resources',
      );
    }
    targetFreeMemory = m.free;
    reservedMemory = m.reserved;
  } else {
    feedback.push(info('Not checking memory on the secondary node as instance will not be started'));
  }

  // #7 always_failover
  if (!cleanup && !failover && inst.beparams.always_failover) {
    feedback.push(info('Instance configured to always failover; fallback to failover'));
    failover = true;
  }

  // #8 bridges on the target
  const bridges = requiredBridges(inst);
  if (bridges.length > 0) {
    const r = need({ key: `bridges_exist:${target}`, kind: 'rpc', rpc: 'bridges_exist', node: target, bridges });
    if (!r.ok) return fail(`Error checking bridges on destination node '${target}': ${r.msg}`, 'environment_error');
  }

  // #9 drained target
  if (!cleanup && snap.nodes[target]?.drained) return fail(`Can't use drained node ${target}`, 'wrong_state');

  // #10 migratable
  if (!cleanup && !failover) {
    const r = need({ key: `instance_migratable:${source}`, kind: 'rpc', rpc: 'instance_migratable', node: source });
    if (!r.ok) {
      if (req.allowFailover) {
        feedback.push(info("Can't migrate, instance offline, fallback to failover"));
        failover = true;
      } else {
        return fail(`Can't migrate, please use failover: ${r.msg}`, 'wrong_state');
      }
    }
  }

  // #12 mode
  let mode: MigrationMode | null = null;
  let live = false;
  if (!failover) {
    mode = req.mode ?? (req.live === undefined ? filledHvParams(snap, inst).migration_mode : req.live ? 'live' : 'non-live');
    live = mode === 'live';
  }

  // #13 runtime memory
  let currentMemory: number | null = null;
  if (!failover && !cleanup) {
    const r = need({ key: `instance_info:${source}`, kind: 'rpc', rpc: 'instance_info', node: source });
    if (!r.ok) return fail(`Error checking instance on node ${source}: ${r.msg}`);
    const p = r.payload as InstanceInfoPayload | null;
    if (p) currentMemory = p.memory;
  }

  return {
    instance: inst.name,
    operation: failover ? 'failover' : cleanup ? 'cleanup' : 'migrate',
    fellBackToFailover: failover && !req.failover,
    mirror: kind,
    sourceNode: source,
    targetNode: target,
    mode,
    live,
    targetFreeMemory,
    reservedMemory,
    currentMemory,
    feedback,
  };
}

function checkIpolicy(
  snap: ClusterSnapshot,
  inst: Instance,
  target: string,
  ignore: boolean,
  feedback: string[],
  fail: (m: string, c?: 'wrong_input') => never,
): void {
  const tgtGroup = snap.nodes[target]?.group ?? 'default';
  if (tgtGroup === snap.nodes[inst.primaryNode]?.group) return;
  const v = ipolicyViolations(snap, inst, tgtGroup);
  if (v.length === 0) return;
  const msg = `Instance does not meet target node group's (${tgtGroup}) instance policy: ${v.join(', ')}`;
  if (ignore) feedback.push(warning(msg));
  else fail(msg, 'wrong_input');
}

function runAllocator(
  snap: ClusterSnapshot,
  inst: Instance,
  failover: boolean,
  need: (f: FactRequest) => RpcResult,
  fail: (m: string, c?: 'insufficient_resources') => never,
): string {
  const candidates = allocatorCandidates(snap, inst);
  const reservations = need({ key: 'reservations', kind: 'reservations' });
  const reserved = (reservations.ok ? reservations.payload : {}) as Record<string, number>;
  // Stryker disable next-line ArrayDeclaration: equivalent: a non-object entry has no `free`, so the `free >= required` filter drops it
  const infos: Array<{ node: string; free: number }> = [];
  const needs: FactRequest[] = [];
  for (const n of candidates) {
    const key = `node_info:${n.name}`;
    try {
      const r = need({ key, kind: 'rpc', rpc: 'node_info', node: n.name });
      if (r.ok) infos.push({ node: n.name, free: (r.payload as NodeInfoPayload).memoryFree - (reserved[n.name] ?? 0) });
    } catch (e) {
      // Stryker disable next-line ConditionalExpression: equivalent: only need() throws here besides a TypeError, which the mutant turns into another TypeError (spreading undefined)
      if (e instanceof Need) needs.push(...e.facts);
      else throw e;
    }
  }
  // All candidates are asked in one round: node_info is read-only and Ganeti's allocator sees them all.
  if (needs.length > 0) throw new Need(needs);
  const required = failover && inst.adminState !== 'up' ? 0 : inst.beparams.minmem;
  const [best] = infos.filter((i) => i.free >= required).sort((a, b) => b.free - a.free || a.node.localeCompare(b.node));
  if (best === undefined) {
    return fail(
      `Can't compute nodes using iallocator '${ALLOCATOR_NAME}': no online, undrained, vm-capable node in the ` +
        `instance's group has ${required} MiB free`,
      'insufficient_resources',
    );
  }
  return best.node;
}

/**
 * The read-only facts `checkPrereq` will ask for about `req` unless a check decides before it gets
 * there (a failure, a fallback to failover): bridges on a target known without the allocator,
 * whether the instance can migrate and its runtime memory on the source. Gathering them with the
 * first round is safe (nothing changes on a node) and never changes a verdict: the checks read
 * them in Ganeti's order, and a fact that is not needed is ignored.
 */
export function readAheadFacts(snap: ClusterSnapshot, req: PrereqRequest): FactRequest[] {
  const inst = snap.instances[req.instance];
  if (!inst) return [];
  const out: FactRequest[] = [];
  const target = mirrorKind(inst) === 'internal' ? secondaryNodes(inst)[0] : req.targetNode;
  const bridges = requiredBridges(inst);
  if (target !== undefined && snap.nodes[target] && bridges.length > 0) {
    out.push({ key: `bridges_exist:${target}`, kind: 'rpc', rpc: 'bridges_exist', node: target, bridges });
  }
  const fallsBack = (inst.adminState !== 'up' && req.allowFailover) || inst.beparams.always_failover;
  if (!req.cleanup && !req.failover && !fallsBack) {
    const source = inst.primaryNode;
    out.push({ key: `instance_migratable:${source}`, kind: 'rpc', rpc: 'instance_migratable', node: source });
    out.push({ key: `instance_info:${source}`, kind: 'rpc', rpc: 'instance_info', node: source });
  }
  return out;
}
