/**
 * Unit tests of the pure `checkPrereq` (TLMigrateInstance.CheckPrereq; docs/behaviour.md §1.3
 * "Argument validation", §2.1 "Target choice", §3 "Prerequisite checks, in order").
 *
 * A small driver answers the facts `checkPrereq` asks for from a table the test controls, records the
 * rounds of requests, and loops until the outcome is `ok` or `failed`. An unexpected fact request
 * (one the table does not answer) fails the test, so each test also pins which RPCs Ganeti would send.
 */
import { describe, expect, test } from 'vitest';
import {
  ALLOCATOR_NAME,
  checkPrereq,
  info,
  warning,
  type FactRequest,
  type Facts,
  type MigrationPlan,
  type PrereqOutcome,
  type PrereqRequest,
  type RpcResult,
  readAheadFacts,
} from '../../domain/prereq.js';
import type { OpError } from '../../domain/errors.js';
import { defaultClusterConfig } from '../../adapters/sim/cluster.js';
import { DISK_TEMPLATES, type ClusterConfig, type ClusterSnapshot, type Instance, type Node } from '../../domain/types.js';

// ---- the driver -----------------------------------------------------------------------------------

const OK = (payload: unknown = null): RpcResult => ({ ok: true, payload });
const ERR = (msg: string, offline = false): RpcResult => ({ ok: false, offline, msg });

const memory = (free: number, reserved: number): RpcResult => OK({ free, reserved });
const nodeInfo = (memoryFree: number): RpcResult => OK({ memoryTotal: 16384, memoryFree, memoryDom0: 1024, hvVersion: '7.2.22' });
const running = (mem: number): RpcResult => OK({ state: 'running', memory: mem, vcpus: 2 });

/**
 * What every node answers when all is well: node1 has 10000 MiB free, node2 8000 MiB, node3 6000 MiB
 * (the memory reservation hands out `maxmem` = 1024 MiB of it), all bridges exist, every instance is
 * running with 1024 MiB, and no other operation holds a reservation.
 */
function healthyAnswers(): Facts {
  return {
    'memory:node1': memory(10000, 1024),
    'memory:node2': memory(8000, 1024),
    'memory:node3': memory(6000, 1024),
    'bridges_exist:node1': OK(),
    'bridges_exist:node2': OK(),
    'bridges_exist:node3': OK(),
    'instance_migratable:node1': OK(),
    'instance_migratable:node2': OK(),
    'instance_migratable:node3': OK(),
    'instance_info:node1': running(1024),
    'instance_info:node2': running(1024),
    'instance_info:node3': running(1024),
    'node_info:node1': nodeInfo(10000),
    'node_info:node2': nodeInfo(8000),
    'node_info:node3': nodeInfo(6000),
    reservations: OK({}),
  };
}

interface Run {
  outcome: Exclude<PrereqOutcome, { status: 'need' }>;
  /** The keys asked for, one array per call that returned `need`. */
  rounds: string[][];
  /** Every fact request, in order. */
  requests: FactRequest[];
}

type Req = Partial<PrereqRequest> & { instance: string };

function request(r: Req): PrereqRequest {
  return { failover: false, cleanup: false, allowFailover: false, ignoreIpolicy: false, ...r };
}

/** With `readAhead`, as the workflow drives it: the first round also gathers `readAheadFacts` (those it does not ask for already). */
function drive(snap: ClusterSnapshot, req: Req, answers: Facts = healthyAnswers(), readAhead = false): Run {
  const facts: Facts = {};
  const rounds: string[][] = [];
  const requests: FactRequest[] = [];
  for (let i = 0; i < 25; i++) {
    const out = checkPrereq(snap, request(req), facts);
    if (out.status !== 'need') return { outcome: out, rounds, requests };
    expect(out.facts.length).toBeGreaterThan(0);
    const ahead = readAhead && i === 0 ? readAheadFacts(snap, request(req)).filter((a) => !out.facts.some((f) => f.key === a.key)) : [];
    const round = [...out.facts, ...ahead];
    rounds.push(round.map((f) => f.key));
    for (const f of round) {
      if (f.key in facts) throw new Error(`fact ${f.key} was asked for again after it was answered`);
      const a = answers[f.key];
      if (!a) throw new Error(`unexpected fact request ${f.key}`);
      facts[f.key] = a;
      requests.push(f);
    }
  }
  throw new Error('checkPrereq did not settle within 25 rounds');
}

function planOf(run: Run): MigrationPlan {
  if (run.outcome.status !== 'ok') {
    throw new Error(`expected ok, got failed: ${run.outcome.error.message}`);
  }
  return run.outcome.plan;
}

function failureOf(run: Run): { error: OpError; feedback: string[] } {
  if (run.outcome.status !== 'failed') throw new Error(`expected failed, got ok: ${JSON.stringify(run.outcome.plan)}`);
  return { error: run.outcome.error, feedback: run.outcome.feedback };
}

/** A fresh copy of the demo cluster: web1 node1→node2, web2 node2→node3, web3 node3→node1, db1 node1→node3, files1 (sharedfile) on node2. */
function cluster(): ClusterConfig {
  return structuredClone(defaultClusterConfig());
}

const inst = (cfg: ClusterConfig, name: string): Instance => {
  const i = cfg.instances[name];
  if (!i) throw new Error(`no instance ${name}`);
  return i;
};

function makeNonMirrored(i: Instance, template: 'plain' | 'file'): void {
  i.diskTemplate = template;
  i.disks = i.disks.map((d, n) => ({
    uuid: d.uuid,
    size: d.size,
    mode: d.mode,
    ...(template === 'file' ? { path: `${i.name}/disk${n}.img` } : {}),
  }));
}

function addNode(cfg: ClusterConfig, name: string, extra: Partial<Node>): void {
  const base = cfg.nodes.node3!;
  cfg.nodes[name] = { ...structuredClone(base), name, uuid: `node-${name}`, ...extra };
}

const STANDARD_ORDER = [['memory:node2'], ['bridges_exist:node2'], ['instance_migratable:node1'], ['instance_info:node1']];

// ---- tests --------------------------------------------------------------------------------------

describe('a normal live DRBD migration', () => {
  test('asks for memory on the target, then bridges on the target, then migratable and instance_info on the source', () => {
    const run = drive(cluster(), { instance: 'web1' });
    expect(run.rounds).toEqual(STANDARD_ORDER);
    expect(run.requests).toEqual([
      { key: 'memory:node2', kind: 'reserve-memory', node: 'node2', needed: 512, wanted: 1024 },
      { key: 'bridges_exist:node2', kind: 'rpc', rpc: 'bridges_exist', node: 'node2', bridges: ['br0'] },
      { key: 'instance_migratable:node1', kind: 'rpc', rpc: 'instance_migratable', node: 'node1' },
      { key: 'instance_info:node1', kind: 'rpc', rpc: 'instance_info', node: 'node1' },
    ]);
  });

  test('produces a live migration plan to the secondary with the measured target memory', () => {
    const plan = planOf(drive(cluster(), { instance: 'web1' }));
    expect(plan).toEqual({
      instance: 'web1',
      operation: 'migrate',
      fellBackToFailover: false,
      mirror: 'internal',
      sourceNode: 'node1',
      targetNode: 'node2',
      mode: 'live',
      live: true,
      targetFreeMemory: 8000,
      reservedMemory: 1024,
      currentMemory: 1024,
      feedback: [],
    });
  });

  test('targets the first secondary of each DRBD instance', () => {
    const cfg = cluster();
    expect(planOf(drive(cfg, { instance: 'web2' })).targetNode).toBe('node3');
    expect(planOf(drive(cfg, { instance: 'web3' })).targetNode).toBe('node1');
    const db1 = drive(cfg, { instance: 'db1' });
    expect(db1.rounds).toEqual([['memory:node3'], ['bridges_exist:node3'], ['instance_migratable:node1'], ['instance_info:node1']]);
    expect(db1.requests[0]).toEqual({ key: 'memory:node3', kind: 'reserve-memory', node: 'node3', needed: 1024, wanted: 2048 });
  });

  test('is pure: the snapshot is not changed and the same facts give the same outcome', () => {
    const cfg = cluster();
    const before = structuredClone(cfg);
    const facts: Facts = {
      'memory:node2': memory(8000, 1024),
      'bridges_exist:node2': OK(),
      'instance_migratable:node1': OK(),
      'instance_info:node1': running(900),
    };
    const a = checkPrereq(cfg, request({ instance: 'web1' }), facts);
    const b = checkPrereq(cfg, request({ instance: 'web1' }), facts);
    expect(a).toEqual(b);
    expect(a.status).toBe('ok');
    expect(cfg).toEqual(before);
    expect(checkPrereq(cfg, request({ instance: 'web1' }), {})).toEqual({
      status: 'need',
      facts: [{ key: 'memory:node2', kind: 'reserve-memory', node: 'node2', needed: 512, wanted: 1024 }],
    });
  });
});

describe('name expansion (ExpandNames)', () => {
  test('an unknown instance is refused with unknown_entity before any node is asked', () => {
    const run = drive(cluster(), { instance: 'nosuch' });
    expect(failureOf(run)).toEqual({
      error: { type: 'PrereqFailed', message: "Instance 'nosuch' not known", code: 'unknown_entity' },
      feedback: [],
    });
    expect(run.rounds).toEqual([]);
  });

  test('an unknown target node is refused with unknown_entity', () => {
    const run = drive(cluster(), { instance: 'files1', targetNode: 'node9' });
    expect(failureOf(run).error).toEqual({ type: 'PrereqFailed', message: "Node 'node9' not known", code: 'unknown_entity' });
    expect(run.rounds).toEqual([]);
  });

  test('migrating a forthcoming instance is refused without an error code', () => {
    const cfg = cluster();
    inst(cfg, 'web1').forthcoming = true;
    const run = drive(cfg, { instance: 'web1' });
    const { error } = failureOf(run);
    expect(error).toEqual({ type: 'PrereqFailed', message: 'forthcoming instances not supported for this operation' });
    expect('code' in error).toBe(false);
    expect(run.rounds).toEqual([]);
  });

  test('failing over a forthcoming instance is accepted', () => {
    const cfg = cluster();
    inst(cfg, 'web1').forthcoming = true;
    const plan = planOf(drive(cfg, { instance: 'web1', failover: true }));
    expect(plan.operation).toBe('failover');
    expect(plan.targetNode).toBe('node2');
  });
});

describe('disk layout (check #3)', () => {
  test("a 'plain' instance cannot be migrated (wrong_state, 'migrations')", () => {
    const cfg = cluster();
    makeNonMirrored(inst(cfg, 'web1'), 'plain');
    const run = drive(cfg, { instance: 'web1' });
    expect(failureOf(run).error).toEqual({
      type: 'PrereqFailed',
      message: "Instance's disk layout 'plain' does not allow migrations",
      code: 'wrong_state',
    });
    expect(run.rounds).toEqual([]);
  });

  test("a 'plain' instance cannot be failed over (wrong_state, 'failovers')", () => {
    const cfg = cluster();
    makeNonMirrored(inst(cfg, 'web1'), 'plain');
    expect(failureOf(drive(cfg, { instance: 'web1', failover: true })).error).toEqual({
      type: 'PrereqFailed',
      message: "Instance's disk layout 'plain' does not allow failovers",
      code: 'wrong_state',
    });
  });

  test("a 'file' instance cannot be migrated", () => {
    const cfg = cluster();
    makeNonMirrored(inst(cfg, 'web1'), 'file');
    expect(failureOf(drive(cfg, { instance: 'web1' })).error).toEqual({
      type: 'PrereqFailed',
      message: "Instance's disk layout 'file' does not allow migrations",
      code: 'wrong_state',
    });
  });

  test("after the admin-state fallback switched to failover, a 'plain' layout is reported as not allowing failovers", () => {
    // Ganeti computes the verb from self.failover *after* check #2 switched it.
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    makeNonMirrored(web1, 'plain');
    web1.adminState = 'down';
    expect(failureOf(drive(cfg, { instance: 'web1', allowFailover: true }))).toEqual({
      error: { type: 'PrereqFailed', message: "Instance's disk layout 'plain' does not allow failovers", code: 'wrong_state' },
      feedback: [' - INFO: Instance is marked down or offline, fallback allowed, switching to failover'],
    });
  });
});

describe('target choice for DRBD (check #4b)', () => {
  test('a target node other than the secondary is refused with wrong_input (migrate)', () => {
    const run = drive(cluster(), { instance: 'web1', targetNode: 'node3' });
    expect(failureOf(run).error).toEqual({
      type: 'PrereqFailed',
      message:
        'Instances with disk types drbd cannot be migrated to arbitrary nodes ' + '(neither an iallocator nor a target node can be passed)',
      code: 'wrong_input',
    });
    expect(run.rounds).toEqual([]);
  });

  test('a target node other than the secondary is refused with wrong_input (failover)', () => {
    const run = drive(cluster(), { instance: 'web1', targetNode: 'node3', failover: true });
    expect(failureOf(run).error).toEqual({
      type: 'PrereqFailed',
      message:
        'Instances with disk types drbd cannot be failed over to arbitrary nodes ' +
        '(neither an iallocator nor a target node can be passed)',
      code: 'wrong_input',
    });
  });

  test('an explicit target equal to the secondary is accepted', () => {
    const run = drive(cluster(), { instance: 'web1', targetNode: 'node2' });
    expect(run.rounds).toEqual(STANDARD_ORDER);
    const plan = planOf(run);
    expect(plan.targetNode).toBe('node2');
    expect(plan.operation).toBe('migrate');
  });

  test('a DRBD instance without a secondary is a ConfigurationError', () => {
    const cfg = cluster();
    inst(cfg, 'web1').disks = [];
    const run = drive(cfg, { instance: 'web1' });
    expect(failureOf(run).error).toEqual({ type: 'ConfigurationError', message: 'No secondary node but using drbd disk types' });
    expect(run.rounds).toEqual([]);
  });
});

describe('target choice for externally mirrored disks (check #4a)', () => {
  test('an explicit target is used and asked in the usual order', () => {
    const run = drive(cluster(), { instance: 'files1', targetNode: 'node3' });
    expect(run.rounds).toEqual([['memory:node3'], ['bridges_exist:node3'], ['instance_migratable:node2'], ['instance_info:node2']]);
    expect(planOf(run)).toEqual({
      instance: 'files1',
      operation: 'migrate',
      fellBackToFailover: false,
      mirror: 'external',
      sourceNode: 'node2',
      targetNode: 'node3',
      mode: 'live',
      live: true,
      targetFreeMemory: 6000,
      reservedMemory: 1024,
      currentMemory: 1024,
      feedback: [],
    });
  });

  test('a target equal to the primary is refused with wrong_state', () => {
    const run = drive(cluster(), { instance: 'files1', targetNode: 'node2' });
    expect(failureOf(run).error).toEqual({
      type: 'PrereqFailed',
      message: 'Cannot migrate instance files1 to its primary (node2)',
      code: 'wrong_state',
    });
    expect(run.rounds).toEqual([]);
  });

  test('no target and no cluster default allocator is refused with wrong_input', () => {
    const cfg = cluster();
    cfg.cluster.defaultIallocator = null;
    const run = drive(cfg, { instance: 'files1' });
    expect(failureOf(run).error).toEqual({
      type: 'PrereqFailed',
      message:
        'No iallocator or node given and no cluster-wide default iallocator found; please specify either an ' +
        'iallocator or a node, or set a cluster-wide default iallocator',
      code: 'wrong_input',
    });
    expect(run.rounds).toEqual([]);
  });

  test('the allocator picks the candidate with the most free memory after other operations’ reservations', () => {
    const answers = healthyAnswers();
    answers['node_info:node1'] = nodeInfo(9000);
    answers['node_info:node3'] = nodeInfo(8000);
    answers.reservations = OK({ node1: 2000, node2: 5000 });
    const run = drive(cluster(), { instance: 'files1' }, answers);
    expect(run.rounds).toEqual([
      ['reservations'],
      ['node_info:node1', 'node_info:node3'],
      ['memory:node3'],
      ['bridges_exist:node3'],
      ['instance_migratable:node2'],
      ['instance_info:node2'],
    ]);
    expect(run.requests.slice(0, 3)).toEqual([
      { key: 'reservations', kind: 'reservations' },
      { key: 'node_info:node1', kind: 'rpc', rpc: 'node_info', node: 'node1' },
      { key: 'node_info:node3', kind: 'rpc', rpc: 'node_info', node: 'node3' },
    ]);
    const plan = planOf(run);
    expect(plan.targetNode).toBe('node3');
    expect(plan.feedback).toEqual([` - INFO: Selected nodes for instance files1 via iallocator ${ALLOCATOR_NAME}: node3`]);
    expect(ALLOCATOR_NAME).toBe('most-free-memory');
  });

  test('without reservations the allocator picks the node with the most reported free memory', () => {
    const answers = healthyAnswers();
    answers['node_info:node1'] = nodeInfo(9000);
    answers['node_info:node3'] = nodeInfo(8000);
    const plan = planOf(drive(cluster(), { instance: 'files1' }, answers));
    expect(plan.targetNode).toBe('node1');
    expect(plan.targetFreeMemory).toBe(10000);
    expect(plan.feedback).toEqual([' - INFO: Selected nodes for instance files1 via iallocator most-free-memory: node1']);
  });

  test('the allocator breaks ties by node name', () => {
    const answers = healthyAnswers();
    answers['node_info:node1'] = nodeInfo(7000);
    answers['node_info:node3'] = nodeInfo(7000);
    expect(planOf(drive(cluster(), { instance: 'files1' }, answers)).targetNode).toBe('node1');
  });

  test('the allocator ignores offline, drained, non-vm-capable nodes and nodes of other groups', () => {
    const cfg = cluster();
    addNode(cfg, 'node4', { offline: true });
    addNode(cfg, 'node5', { drained: true });
    addNode(cfg, 'node6', { vmCapable: false });
    addNode(cfg, 'node7', { group: 'other' });
    const answers = healthyAnswers();
    answers['node_info:node1'] = nodeInfo(3000);
    answers['node_info:node3'] = nodeInfo(4000);
    for (const n of ['node4', 'node5', 'node6', 'node7']) answers[`node_info:${n}`] = nodeInfo(15000);
    const run = drive(cfg, { instance: 'files1' }, answers);
    expect(run.rounds.slice(0, 2)).toEqual([['reservations'], ['node_info:node1', 'node_info:node3']]);
    expect(planOf(run).targetNode).toBe('node3');
  });

  test('the allocator skips a candidate whose node_info fails', () => {
    const answers = healthyAnswers();
    answers['node_info:node1'] = ERR('Node is marked offline', true);
    answers['node_info:node3'] = nodeInfo(1000);
    expect(planOf(drive(cluster(), { instance: 'files1' }, answers)).targetNode).toBe('node3');
  });

  test('the allocator fails with insufficient_resources when no candidate has minmem free', () => {
    const answers = healthyAnswers();
    answers['node_info:node1'] = nodeInfo(600);
    answers['node_info:node3'] = nodeInfo(511);
    answers.reservations = OK({ node1: 100 });
    const run = drive(cluster(), { instance: 'files1' }, answers);
    expect(failureOf(run)).toEqual({
      error: {
        type: 'PrereqFailed',
        message:
          "Can't compute nodes using iallocator 'most-free-memory': no online, undrained, vm-capable node in the " +
          "instance's group has 512 MiB free",
        code: 'insufficient_resources',
      },
      feedback: [],
    });
    expect(run.rounds).toEqual([['reservations'], ['node_info:node1', 'node_info:node3']]);
  });

  test('the allocator fails with insufficient_resources when there is no candidate at all', () => {
    const cfg = cluster();
    cfg.nodes.node1!.drained = true;
    cfg.nodes.node3!.offline = true;
    const run = drive(cfg, { instance: 'files1' });
    expect(failureOf(run).error).toEqual({
      type: 'PrereqFailed',
      message:
        "Can't compute nodes using iallocator 'most-free-memory': no online, undrained, vm-capable node in the " +
        "instance's group has 512 MiB free",
      code: 'insufficient_resources',
    });
    expect(run.rounds).toEqual([['reservations']]);
  });
});

describe('instance policy of the target group (check #5)', () => {
  function withGroups(cfg: ClusterConfig): void {
    cfg.cluster.groups = {
      default: {
        name: 'default',
        ipolicy: { minmem: 0, maxmem: 1024 * 1024, maxVcpus: 64, diskTemplates: ['drbd', 'sharedfile', 'plain', 'file'] },
      },
      small: { name: 'small', ipolicy: { minmem: 0, maxmem: 512, maxVcpus: 1, diskTemplates: ['plain'] } },
    };
  }
  const SMALL_VIOLATION =
    "Instance does not meet target node group's (small) instance policy: memory-size value 512-1024 is not in range " +
    '[0, 512], cpu-count value 2 is not in range [1, 1], Disk template drbd is not allowed (allowed templates plain)';

  test('a violation in a different target group is refused with wrong_input', () => {
    const cfg = cluster();
    withGroups(cfg);
    cfg.nodes.node2!.group = 'small';
    const run = drive(cfg, { instance: 'web1' });
    expect(failureOf(run)).toEqual({
      error: { type: 'PrereqFailed', message: SMALL_VIOLATION, code: 'wrong_input' },
      feedback: [],
    });
    expect(run.rounds).toEqual([]);
  });

  test('with ignoreIpolicy the violation becomes a warning and the migration proceeds', () => {
    const cfg = cluster();
    withGroups(cfg);
    cfg.nodes.node2!.group = 'small';
    const run = drive(cfg, { instance: 'web1', ignoreIpolicy: true });
    expect(run.rounds).toEqual(STANDARD_ORDER);
    const plan = planOf(run);
    expect(plan.feedback).toEqual([` - WARNING: ${SMALL_VIOLATION}`]);
    expect(plan.operation).toBe('migrate');
  });

  test('no violation is computed when the target is in the primary’s group', () => {
    const cfg = cluster();
    withGroups(cfg);
    cfg.nodes.node1!.group = 'small';
    cfg.nodes.node2!.group = 'small';
    const plan = planOf(drive(cfg, { instance: 'web1' }));
    expect(plan.feedback).toEqual([]);
    expect(plan.targetNode).toBe('node2');
  });

  test('an explicit external target in another group is checked against that group’s policy', () => {
    const cfg = cluster();
    withGroups(cfg);
    cfg.nodes.node3!.group = 'small';
    const run = drive(cfg, { instance: 'files1', targetNode: 'node3' });
    expect(failureOf(run).error).toEqual({
      type: 'PrereqFailed',
      message:
        "Instance does not meet target node group's (small) instance policy: memory-size value 512-1024 is not in " +
        'range [0, 512], Disk template sharedfile is not allowed (allowed templates plain)',
      code: 'wrong_input',
    });
  });
});

describe('free memory on the target (check #6)', () => {
  test('a failed memory query is an environment_error naming the node', () => {
    const answers = healthyAnswers();
    answers['memory:node2'] = ERR('Node is marked offline', true);
    const run = drive(cluster(), { instance: 'web1' }, answers);
    expect(failureOf(run).error).toEqual({
      type: 'PrereqFailed',
      message: "Can't get data from node node2: Node is marked offline",
      code: 'environment_error',
    });
    expect(run.rounds).toEqual([['memory:node2']]);
  });

  test('a non-integer free memory is an environment_error', () => {
    const answers = healthyAnswers();
    answers['memory:node2'] = memory(1.5, 0);
    expect(failureOf(drive(cluster(), { instance: 'web1' }, answers)).error).toEqual({
      type: 'PrereqFailed',
      message: "Can't compute free memory on node node2, result was '1.5'",
      code: 'environment_error',
    });
  });

  test('less free memory than minmem is insufficient_resources with needed and available MiB', () => {
    const answers = healthyAnswers();
    answers['memory:node2'] = memory(511, 0);
    const run = drive(cluster(), { instance: 'web1' }, answers);
    expect(failureOf(run).error).toEqual({
      type: 'PrereqFailed',
      message: 'Not enough memory on node node2 for migrating instance web1: needed 512 MiB, available 511 MiB',
      code: 'insufficient_resources',
    });
    expect(run.rounds).toEqual([['memory:node2']]);
  });

  test('the comparison uses minmem, not maxmem', () => {
    const answers = healthyAnswers();
    answers['memory:node2'] = memory(512, 512);
    const plan = planOf(drive(cluster(), { instance: 'web1' }, answers));
    expect(plan.targetFreeMemory).toBe(512);
    expect(plan.reservedMemory).toBe(512);
  });

  test('cleanup does not check memory and says so', () => {
    const answers = healthyAnswers();
    delete answers['memory:node2'];
    const run = drive(cluster(), { instance: 'web1', cleanup: true }, answers);
    expect(run.rounds).toEqual([['bridges_exist:node2']]);
    expect(planOf(run)).toEqual({
      instance: 'web1',
      operation: 'cleanup',
      fellBackToFailover: false,
      mirror: 'internal',
      sourceNode: 'node1',
      targetNode: 'node2',
      mode: 'live',
      live: true,
      targetFreeMemory: null,
      reservedMemory: 0,
      currentMemory: null,
      feedback: [' - INFO: Not checking memory on the secondary node as instance will not be started'],
    });
  });
});

describe('bridges on the target (check #8)', () => {
  test('missing bridges are an environment_error naming the destination', () => {
    const answers = healthyAnswers();
    answers['bridges_exist:node2'] = ERR('Missing bridges br0');
    const run = drive(cluster(), { instance: 'web1' }, answers);
    expect(failureOf(run).error).toEqual({
      type: 'PrereqFailed',
      message: "Error checking bridges on destination node 'node2': Missing bridges br0",
      code: 'environment_error',
    });
    expect(run.rounds).toEqual([['memory:node2'], ['bridges_exist:node2']]);
  });

  test('bridges are still checked during cleanup', () => {
    const answers = healthyAnswers();
    answers['bridges_exist:node2'] = ERR('Missing bridges br0');
    const run = drive(cluster(), { instance: 'web1', cleanup: true }, answers);
    expect(failureOf(run)).toEqual({
      error: {
        type: 'PrereqFailed',
        message: "Error checking bridges on destination node 'node2': Missing bridges br0",
        code: 'environment_error',
      },
      feedback: [' - INFO: Not checking memory on the secondary node as instance will not be started'],
    });
    expect(run.rounds).toEqual([['bridges_exist:node2']]);
  });

  test('each distinct bridge of bridged NICs is asked once; routed and openvswitch NICs are not checked', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    const nic = web1.nics[0]!;
    web1.nics = [
      nic,
      { ...nic, uuid: 'nic-1b', mac: 'aa:00:00:00:01:01', link: 'br0' },
      { ...nic, uuid: 'nic-1c', mac: 'aa:00:00:00:01:02', link: 'br1' },
      { ...nic, uuid: 'nic-1d', mac: 'aa:00:00:00:01:03', mode: 'routed', link: 'rt100' },
      { ...nic, uuid: 'nic-1e', mac: 'aa:00:00:00:01:04', mode: 'openvswitch', link: 'ovs0' },
    ];
    const run = drive(cfg, { instance: 'web1' });
    expect(run.requests[1]).toEqual({
      key: 'bridges_exist:node2',
      kind: 'rpc',
      rpc: 'bridges_exist',
      node: 'node2',
      bridges: ['br0', 'br1'],
    });
  });

  test('an instance without bridged NICs asks no bridge question', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    web1.nics = web1.nics.map((n) => ({ ...n, mode: 'routed' as const, link: 'rt100' }));
    const run = drive(cfg, { instance: 'web1' });
    expect(run.rounds).toEqual([['memory:node2'], ['instance_migratable:node1'], ['instance_info:node1']]);
  });
});

describe('drained target (check #9)', () => {
  test('a drained target is refused with wrong_state after the memory and bridge checks', () => {
    const cfg = cluster();
    cfg.nodes.node2!.drained = true;
    const run = drive(cfg, { instance: 'web1' });
    expect(failureOf(run).error).toEqual({ type: 'PrereqFailed', message: "Can't use drained node node2", code: 'wrong_state' });
    expect(run.rounds).toEqual([['memory:node2'], ['bridges_exist:node2']]);
  });

  test('a drained target is refused for a failover too', () => {
    const cfg = cluster();
    cfg.nodes.node2!.drained = true;
    expect(failureOf(drive(cfg, { instance: 'web1', failover: true })).error).toEqual({
      type: 'PrereqFailed',
      message: "Can't use drained node node2",
      code: 'wrong_state',
    });
  });

  test('a drained target is not checked during cleanup', () => {
    const cfg = cluster();
    cfg.nodes.node2!.drained = true;
    const plan = planOf(drive(cfg, { instance: 'web1', cleanup: true }));
    expect(plan.operation).toBe('cleanup');
    expect(plan.targetNode).toBe('node2');
  });
});

describe('instance migratable (check #10) and fallback to failover', () => {
  test('a non-migratable instance without allowFailover is refused with wrong_state', () => {
    const answers = healthyAnswers();
    answers['instance_migratable:node1'] = ERR('Instance web1 is not running');
    const run = drive(cluster(), { instance: 'web1' }, answers);
    expect(failureOf(run)).toEqual({
      error: { type: 'PrereqFailed', message: "Can't migrate, please use failover: Instance web1 is not running", code: 'wrong_state' },
      feedback: [],
    });
    expect(run.rounds).toEqual([['memory:node2'], ['bridges_exist:node2'], ['instance_migratable:node1']]);
  });

  test('a non-migratable instance with allowFailover falls back to a failover', () => {
    const answers = healthyAnswers();
    answers['instance_migratable:node1'] = ERR('Instance web1 is not running');
    const run = drive(cluster(), { instance: 'web1', allowFailover: true, mode: 'live' }, answers);
    expect(run.rounds).toEqual([['memory:node2'], ['bridges_exist:node2'], ['instance_migratable:node1']]);
    expect(planOf(run)).toEqual({
      instance: 'web1',
      operation: 'failover',
      fellBackToFailover: true,
      mirror: 'internal',
      sourceNode: 'node1',
      targetNode: 'node2',
      mode: null,
      live: false,
      targetFreeMemory: 8000,
      reservedMemory: 1024,
      currentMemory: null,
      feedback: [" - INFO: Can't migrate, instance offline, fallback to failover"],
    });
  });

  test('cleanup does not ask whether the instance is migratable', () => {
    const run = drive(cluster(), { instance: 'web1', cleanup: true, allowFailover: true });
    expect(run.rounds).toEqual([['bridges_exist:node2']]);
    expect(planOf(run).operation).toBe('cleanup');
  });
});

describe('admin state and failover requests', () => {
  test('an admin-down instance with allowFailover switches to failover and skips the memory check', () => {
    const cfg = cluster();
    inst(cfg, 'web1').adminState = 'down';
    const run = drive(cfg, { instance: 'web1', allowFailover: true });
    expect(run.rounds).toEqual([['bridges_exist:node2']]);
    expect(planOf(run)).toEqual({
      instance: 'web1',
      operation: 'failover',
      fellBackToFailover: true,
      mirror: 'internal',
      sourceNode: 'node1',
      targetNode: 'node2',
      mode: null,
      live: false,
      targetFreeMemory: null,
      reservedMemory: 0,
      currentMemory: null,
      feedback: [
        ' - INFO: Instance is marked down or offline, fallback allowed, switching to failover',
        ' - INFO: Not checking memory on the secondary node as instance will not be started',
      ],
    });
  });

  test('an admin-offline instance with allowFailover switches to failover too', () => {
    const cfg = cluster();
    inst(cfg, 'web1').adminState = 'offline';
    const plan = planOf(drive(cfg, { instance: 'web1', allowFailover: true }));
    expect(plan.operation).toBe('failover');
    expect(plan.feedback[0]).toBe(' - INFO: Instance is marked down or offline, fallback allowed, switching to failover');
  });

  test('an admin-down instance without allowFailover is still a migration: memory is checked and migratable fails', () => {
    const cfg = cluster();
    inst(cfg, 'web1').adminState = 'down';
    const answers = healthyAnswers();
    answers['instance_migratable:node1'] = ERR('Instance web1 is not running');
    const run = drive(cfg, { instance: 'web1' }, answers);
    expect(run.rounds).toEqual([['memory:node2'], ['bridges_exist:node2'], ['instance_migratable:node1']]);
    expect(failureOf(run)).toEqual({
      error: { type: 'PrereqFailed', message: "Can't migrate, please use failover: Instance web1 is not running", code: 'wrong_state' },
      feedback: [],
    });
  });

  test('the admin-state fallback does not apply to cleanup', () => {
    const cfg = cluster();
    inst(cfg, 'web1').adminState = 'down';
    const plan = planOf(drive(cfg, { instance: 'web1', cleanup: true, allowFailover: true }));
    expect(plan.operation).toBe('cleanup');
    expect(plan.fellBackToFailover).toBe(false);
    expect(plan.feedback).toEqual([' - INFO: Not checking memory on the secondary node as instance will not be started']);
  });

  test('a failover of an admin-up instance checks memory but neither migratable nor instance_info', () => {
    const run = drive(cluster(), { instance: 'web1', failover: true, mode: 'non-live' });
    expect(run.rounds).toEqual([['memory:node2'], ['bridges_exist:node2']]);
    expect(planOf(run)).toEqual({
      instance: 'web1',
      operation: 'failover',
      fellBackToFailover: false,
      mirror: 'internal',
      sourceNode: 'node1',
      targetNode: 'node2',
      mode: null,
      live: false,
      targetFreeMemory: 8000,
      reservedMemory: 1024,
      currentMemory: null,
      feedback: [],
    });
  });

  test('a failover of an admin-down instance does not check memory', () => {
    const cfg = cluster();
    inst(cfg, 'web1').adminState = 'down';
    const run = drive(cfg, { instance: 'web1', failover: true });
    expect(run.rounds).toEqual([['bridges_exist:node2']]);
    const plan = planOf(run);
    expect(plan.feedback).toEqual([' - INFO: Not checking memory on the secondary node as instance will not be started']);
    expect(plan.fellBackToFailover).toBe(false);
    expect(plan.targetFreeMemory).toBeNull();
  });

  test('always_failover forces a failover even without allowFailover, after the memory check', () => {
    const cfg = cluster();
    inst(cfg, 'web1').beparams.always_failover = true;
    const run = drive(cfg, { instance: 'web1' });
    expect(run.rounds).toEqual([['memory:node2'], ['bridges_exist:node2']]);
    expect(planOf(run)).toEqual({
      instance: 'web1',
      operation: 'failover',
      fellBackToFailover: true,
      mirror: 'internal',
      sourceNode: 'node1',
      targetNode: 'node2',
      mode: null,
      live: false,
      targetFreeMemory: 8000,
      reservedMemory: 1024,
      currentMemory: null,
      feedback: [' - INFO: Instance configured to always failover; fallback to failover'],
    });
  });

  test('always_failover is ignored during cleanup', () => {
    const cfg = cluster();
    inst(cfg, 'web1').beparams.always_failover = true;
    const plan = planOf(drive(cfg, { instance: 'web1', cleanup: true }));
    expect(plan.operation).toBe('cleanup');
    expect(plan.feedback).toEqual([' - INFO: Not checking memory on the secondary node as instance will not be started']);
  });

  test('feedback gathered before a failure is returned with the error', () => {
    const cfg = cluster();
    inst(cfg, 'web1').adminState = 'down';
    const answers = healthyAnswers();
    answers['bridges_exist:node2'] = ERR('Missing bridges br0');
    expect(failureOf(drive(cfg, { instance: 'web1', allowFailover: true }, answers))).toEqual({
      error: {
        type: 'PrereqFailed',
        message: "Error checking bridges on destination node 'node2': Missing bridges br0",
        code: 'environment_error',
      },
      feedback: [
        ' - INFO: Instance is marked down or offline, fallback allowed, switching to failover',
        ' - INFO: Not checking memory on the secondary node as instance will not be started',
      ],
    });
  });
});

describe('migration mode (check #12)', () => {
  test('an explicit mode is used', () => {
    const plan = planOf(drive(cluster(), { instance: 'web1', mode: 'non-live' }));
    expect(plan.mode).toBe('non-live');
    expect(plan.live).toBe(false);
  });

  test('legacy live=true means live and live=false means non-live', () => {
    const yes = planOf(drive(cluster(), { instance: 'web1', live: true }));
    expect([yes.mode, yes.live]).toEqual(['live', true]);
    const no = planOf(drive(cluster(), { instance: 'web1', live: false }));
    expect([no.mode, no.live]).toEqual(['non-live', false]);
  });

  test('without mode or live the cluster default migration_mode applies', () => {
    const cfg = cluster();
    expect(planOf(drive(cfg, { instance: 'web1' })).mode).toBe('live');
    cfg.cluster.hvparams.migration_mode = 'non-live';
    const plan = planOf(drive(cfg, { instance: 'web1' }));
    expect([plan.mode, plan.live]).toEqual(['non-live', false]);
  });

  test("the instance's hvparams override the cluster default, and an explicit mode overrides both", () => {
    const cfg = cluster();
    inst(cfg, 'web1').hvparams.migration_mode = 'non-live';
    const plan = planOf(drive(cfg, { instance: 'web1' }));
    expect([plan.mode, plan.live]).toEqual(['non-live', false]);
    const explicit = planOf(drive(cfg, { instance: 'web1', mode: 'live' }));
    expect([explicit.mode, explicit.live]).toEqual(['live', true]);
    const legacy = planOf(drive(cfg, { instance: 'web1', live: true }));
    expect([legacy.mode, legacy.live]).toEqual(['live', true]);
  });

  test('a failover is never live and has no mode', () => {
    const plan = planOf(drive(cluster(), { instance: 'web1', failover: true, live: true }));
    expect([plan.mode, plan.live]).toEqual([null, false]);
  });

  test('cleanup resolves the mode too', () => {
    const plan = planOf(drive(cluster(), { instance: 'web1', cleanup: true, mode: 'non-live' }));
    expect([plan.operation, plan.mode, plan.live]).toEqual(['cleanup', 'non-live', false]);
  });
});

describe('runtime memory (check #13)', () => {
  test('a failed instance_info is a prerequisite error without a code', () => {
    const answers = healthyAnswers();
    answers['instance_info:node1'] = ERR('Connection refused');
    const run = drive(cluster(), { instance: 'web1' }, answers);
    const { error } = failureOf(run);
    expect(error).toEqual({ type: 'PrereqFailed', message: 'Error checking instance on node node1: Connection refused' });
    expect('code' in error).toBe(false);
    expect(run.rounds).toEqual(STANDARD_ORDER);
  });

  test('currentMemory is the (ballooned) memory the source reports', () => {
    const answers = healthyAnswers();
    answers['instance_info:node1'] = running(768);
    const plan = planOf(drive(cluster(), { instance: 'web1' }, answers));
    expect(plan.currentMemory).toBe(768);
    expect(plan.targetFreeMemory).toBe(8000);
  });

  test('currentMemory stays null when the source reports the instance is not running', () => {
    const answers = healthyAnswers();
    answers['instance_info:node1'] = OK(null);
    expect(planOf(drive(cluster(), { instance: 'web1' }, answers)).currentMemory).toBeNull();
  });
});

describe('feedback formatting', () => {
  test('LogInfo and LogWarning lines carry Ganeti’s prefixes', () => {
    expect(info('hello')).toBe(' - INFO: hello');
    expect(warning('careful')).toBe(' - WARNING: careful');
  });

  test('every feedback line of a busy check starts with an INFO or WARNING prefix', () => {
    const cfg = cluster();
    cfg.cluster.groups = { other: { name: 'other', ipolicy: { minmem: 0, maxmem: 100, maxVcpus: 64, diskTemplates: ['sharedfile'] } } };
    cfg.nodes.node3!.group = 'other';
    inst(cfg, 'files1').adminState = 'down';
    const plan = planOf(drive(cfg, { instance: 'files1', targetNode: 'node3', allowFailover: true, ignoreIpolicy: true }));
    expect(plan.feedback).toEqual([
      ' - INFO: Instance is marked down or offline, fallback allowed, switching to failover',
      " - WARNING: Instance does not meet target node group's (other) instance policy: memory-size value 512-1024 is not in range [0, 100]",
      ' - INFO: Not checking memory on the secondary node as instance will not be started',
    ]);
    for (const l of plan.feedback) expect(l).toMatch(/^ - (INFO|WARNING): /);
  });
});

describe('instance policy boundaries', () => {
  const policy = (ipolicy: Partial<{ minmem: number; maxmem: number; maxVcpus: number; diskTemplates: Instance['diskTemplate'][] }>) => ({
    minmem: 0,
    maxmem: 1024 * 1024,
    maxVcpus: 64,
    diskTemplates: [...DISK_TEMPLATES],
    ...ipolicy,
  });
  /** web1 (512–1024 MiB, 2 vCPUs, drbd) migrating to node2 in group `g` with the given policy. */
  function toGroup(ipolicy: Parameters<typeof policy>[0] | null): Run {
    const cfg = cluster();
    if (ipolicy) cfg.cluster.groups = { g: { name: 'g', ipolicy: policy(ipolicy) } };
    cfg.nodes.node2!.group = 'g';
    return drive(cfg, { instance: 'web1' });
  }
  const violation = (what: string) => "Instance does not meet target node group's (g) instance policy: " + what;

  test('a target group without a policy, or whose policy the instance meets, imposes nothing', () => {
    for (const run of [toGroup(null), toGroup({}), toGroup({ minmem: 512, maxmem: 1024, maxVcpus: 2, diskTemplates: ['drbd'] })]) {
      expect(run.rounds).toEqual(STANDARD_ORDER);
      expect(planOf(run).feedback).toEqual([]);
    }
  });

  test('memory below the policy’s minimum or above its maximum is a violation', () => {
    expect(failureOf(toGroup({ minmem: 513 })).error.message).toBe(violation('memory-size value 512-1024 is not in range [513, 1048576]'));
    expect(failureOf(toGroup({ maxmem: 1023 })).error.message).toBe(violation('memory-size value 512-1024 is not in range [0, 1023]'));
  });

  test('the violation lists every allowed template', () => {
    expect(failureOf(toGroup({ diskTemplates: ['plain', 'file'] })).error.message).toBe(
      violation('Disk template drbd is not allowed (allowed templates plain, file)'),
    );
  });
});

describe('allocator edges', () => {
  test('candidates are asked in name order, whatever order the configuration lists them in', () => {
    const cfg = cluster();
    addNode(cfg, 'node0', {});
    const answers = { ...healthyAnswers(), 'node_info:node0': nodeInfo(100) };
    const run = drive(cfg, { instance: 'files1' }, answers);
    expect(run.rounds[1]).toEqual(['node_info:node0', 'node_info:node1', 'node_info:node3']);
  });

  test('a candidate with exactly minmem free qualifies', () => {
    const answers = healthyAnswers();
    answers['node_info:node1'] = nodeInfo(511);
    answers['node_info:node3'] = nodeInfo(512);
    answers['memory:node3'] = memory(512, 512);
    expect(planOf(drive(cluster(), { instance: 'files1' }, answers)).targetNode).toBe('node3');
  });

  test('failing over a stopped instance needs no free memory; failing over a running one needs minmem', () => {
    const answers = healthyAnswers();
    answers['node_info:node1'] = nodeInfo(100);
    answers['node_info:node3'] = nodeInfo(50);
    const cfg = cluster();
    inst(cfg, 'files1').adminState = 'down';
    const down = planOf(drive(cfg, { instance: 'files1', failover: true }, answers));
    expect(down.operation).toBe('failover');
    expect(down.targetNode).toBe('node1');
    expect(failureOf(drive(cluster(), { instance: 'files1', failover: true }, answers)).error).toEqual({
      type: 'PrereqFailed',
      message:
        "Can't compute nodes using iallocator 'most-free-memory': no online, undrained, vm-capable node in the " +
        "instance's group has 512 MiB free",
      code: 'insufficient_resources',
    });
  });
});

describe('unexpected errors', () => {
  test('a broken snapshot throws instead of being reported as a failed prerequisite', () => {
    const broken = { ...cluster(), instances: undefined } as unknown as ClusterSnapshot;
    expect(() => checkPrereq(broken, request({ instance: 'web1' }), {})).toThrow(TypeError);
  });
});

// ---- read-ahead ---------------------------------------------------------------------------------

const aheadKeys = (snap: ClusterSnapshot, req: Req): string[] => readAheadFacts(snap, request(req)).map((f) => f.key);

describe('read-ahead facts (read-only RPCs gathered with the first round)', () => {
  test('a live DRBD migration reads bridges on the target, migratable and instance_info on the source ahead: one round', () => {
    const cfg = cluster();
    expect(readAheadFacts(cfg, request({ instance: 'web1' }))).toEqual([
      { key: 'bridges_exist:node2', kind: 'rpc', rpc: 'bridges_exist', node: 'node2', bridges: ['br0'] },
      { key: 'instance_migratable:node1', kind: 'rpc', rpc: 'instance_migratable', node: 'node1' },
      { key: 'instance_info:node1', kind: 'rpc', rpc: 'instance_info', node: 'node1' },
    ]);
    const run = drive(cfg, { instance: 'web1' }, healthyAnswers(), true);
    expect(run.rounds).toEqual([STANDARD_ORDER.flat()]);
    expect(run.outcome).toEqual(drive(cfg, { instance: 'web1' }).outcome);
  });

  test('failover, cleanup and the fallbacks known beforehand read only the bridges ahead', () => {
    const cfg = cluster();
    expect(aheadKeys(cfg, { instance: 'web1', failover: true })).toEqual(['bridges_exist:node2']);
    expect(aheadKeys(cfg, { instance: 'web1', cleanup: true })).toEqual(['bridges_exist:node2']);
    inst(cfg, 'web2').beparams.always_failover = true;
    expect(aheadKeys(cfg, { instance: 'web2' })).toEqual(['bridges_exist:node3']);
    inst(cfg, 'web3').adminState = 'down';
    expect(aheadKeys(cfg, { instance: 'web3', allowFailover: true })).toEqual(['bridges_exist:node1']);
    // Without the fallback allowed, a stopped instance is asked whether it can migrate (and refused then).
    expect(aheadKeys(cfg, { instance: 'web3' })).toEqual(['bridges_exist:node1', 'instance_migratable:node3', 'instance_info:node3']);
  });

  test('bridges are read ahead only on a target known without the allocator, and only bridged NICs count', () => {
    const cfg = cluster();
    expect(aheadKeys(cfg, { instance: 'nosuch' })).toEqual([]);
    expect(aheadKeys(cfg, { instance: 'files1' })).toEqual(['instance_migratable:node2', 'instance_info:node2']);
    expect(aheadKeys(cfg, { instance: 'files1', targetNode: 'node3' })).toEqual([
      'bridges_exist:node3',
      'instance_migratable:node2',
      'instance_info:node2',
    ]);
    expect(aheadKeys(cfg, { instance: 'files1', targetNode: 'nosuch' })).toEqual(['instance_migratable:node2', 'instance_info:node2']);
    const web1 = inst(cfg, 'web1');
    web1.nics = web1.nics.map((n) => ({ ...n, mode: 'routed' as const, link: 'rt100' }));
    expect(aheadKeys(cfg, { instance: 'web1' })).toEqual(['instance_migratable:node1', 'instance_info:node1']);
  });

  test('reading ahead changes no verdict, message or plan', () => {
    const cfg = cluster();
    inst(cfg, 'web3').adminState = 'down';
    const variants: Array<[Req, Facts]> = [
      [{ instance: 'web1' }, healthyAnswers()],
      [{ instance: 'web1' }, { ...healthyAnswers(), 'memory:node2': memory(100, 0) }],
      [{ instance: 'web1' }, { ...healthyAnswers(), 'bridges_exist:node2': ERR('missing bridges: br0') }],
      [{ instance: 'web1' }, { ...healthyAnswers(), 'instance_migratable:node1': ERR('not running') }],
      [
        { instance: 'web1', allowFailover: true },
        { ...healthyAnswers(), 'instance_migratable:node1': ERR('not running') },
      ],
      [{ instance: 'web1' }, { ...healthyAnswers(), 'instance_info:node1': ERR('no such instance') }],
      [{ instance: 'web1', failover: true }, healthyAnswers()],
      [{ instance: 'web1', cleanup: true }, healthyAnswers()],
      [{ instance: 'web3' }, { ...healthyAnswers(), 'instance_migratable:node3': ERR('not running') }],
      [{ instance: 'web3', allowFailover: true }, healthyAnswers()],
      [{ instance: 'files1' }, healthyAnswers()],
      [{ instance: 'files1', targetNode: 'node3' }, healthyAnswers()],
    ];
    for (const [req, answers] of variants) {
      expect(drive(cfg, req, answers, true).outcome, JSON.stringify(req)).toEqual(drive(cfg, req, answers).outcome);
    }
  });
});
