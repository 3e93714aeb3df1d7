/**
 * Unit tests of `checkInvariants` (the behaviour spec's "Invariants" section) over hand-built hardware
 * states: `buildHardware(cfg)` gives the steady state the configuration describes, and each test moves
 * processes, DRBD roles, symlinks and shared-disk openings by hand to build a good or a bad situation.
 */
import { describe, expect, test } from 'vitest';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import { buildHardware, defaultClusterConfig, instanceHwDetail, type InstanceHwDetail } from '../../adapters/sim/cluster.js';
import type { SimDrbd, SimState } from '../../adapters/sim/state.js';
import type { ClusterConfig, Instance } from '../../domain/types.js';

const NOW = 0;

function cluster(): ClusterConfig {
  return structuredClone(defaultClusterConfig());
}

function inst(cfg: ClusterConfig, name: string): Instance {
  const i = cfg.instances[name];
  if (!i) throw new Error(`no instance ${name}`);
  return i;
}

function detail(hw: SimState, i: Instance): InstanceHwDetail {
  return instanceHwDetail(hw, NOW, i);
}

/** The DRBD device of disk `disk` of `i` on `node`. */
function dev(hw: SimState, i: Instance, node: string, disk = 0): SimDrbd {
  const id = i.disks[disk]?.drbd;
  if (!id) throw new Error(`disk ${disk} of ${i.name} is not DRBD`);
  const side = id.nodes.indexOf(node);
  const d = hw.nodes[node]?.drbd[String(id.minors[side])];
  if (side < 0 || !d) throw new Error(`no DRBD device of ${i.name} on ${node}`);
  return d;
}

function moveProcess(hw: SimState, name: string, from: string, to: string): void {
  const p = hw.nodes[from]!.processes[name];
  if (!p) throw new Error(`${name} does not run on ${from}`);
  hw.nodes[to]!.processes[name] = p;
  delete hw.nodes[from]!.processes[name];
}

function moveLinks(hw: SimState, name: string, from: string, to: string): void {
  delete hw.nodes[from]!.links[name];
  hw.nodes[to]!.links[name] = true;
}

/** What a successful live migration of web1 (node1 → node2) leaves behind, configuration included. */
function migratedWeb1(): { cfg: ClusterConfig; hw: SimState; web1: Instance } {
  const cfg = cluster();
  const hw = buildHardware(cfg);
  const web1 = inst(cfg, 'web1');
  web1.primaryNode = 'node2';
  moveProcess(hw, 'web1', 'node1', 'node2');
  dev(hw, web1, 'node1').role = 'Secondary';
  dev(hw, web1, 'node2').role = 'Primary';
  moveLinks(hw, 'web1', 'node1', 'node2');
  return { cfg, hw, web1 };
}

/** What a successful migration of the sharedfile instance files1 (node2 → node3) leaves behind. */
function migratedFiles1(): { cfg: ClusterConfig; hw: SimState; files1: Instance } {
  const cfg = cluster();
  const hw = buildHardware(cfg);
  const files1 = inst(cfg, 'files1');
  files1.primaryNode = 'node3';
  moveProcess(hw, 'files1', 'node2', 'node3');
  hw.nodes.node3!.shared['disk-5-0'] = { instance: 'files1', mode: 'exclusive' };
  delete hw.nodes.node2!.shared['disk-5-0'];
  moveLinks(hw, 'files1', 'node2', 'node3');
  return { cfg, hw, files1 };
}

const MIGRATED_WEB1 = { kind: 'migrated', source: 'node1', target: 'node2' } as const;
const MIGRATED_FILES1 = { kind: 'migrated', source: 'node2', target: 'node3' } as const;

describe('the hardware built from the configuration', () => {
  test('is the steady state: web1 runs on node1, DRBD connected single-primary with node1 Primary', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    const d = detail(buildHardware(cfg), web1);
    expect(d.runningOn).toEqual(['node1']);
    expect(d.processes).toEqual({ node1: { state: 'running' } });
    expect(d.links).toEqual(['node1']);
    expect(d.disks).toEqual([
      {
        index: 0,
        nodes: {
          node1: { role: 'Primary', connection: 'Connected', disk: 'UpToDate', dualPrimary: false },
          node2: { role: 'Secondary', connection: 'Connected', disk: 'UpToDate', dualPrimary: false },
        },
      },
    ]);
  });
});

describe("'migrated'", () => {
  test('a correct DRBD migration passes', () => {
    const { hw, web1 } = migratedWeb1();
    expect(detail(hw, web1).runningOn).toEqual(['node2']);
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual([]);
  });

  test('a correct sharedfile migration passes', () => {
    const { hw, files1 } = migratedFiles1();
    expect(checkInvariants(MIGRATED_FILES1, files1, detail(hw, files1))).toEqual([]);
  });

  test('a configuration still naming the source as primary is reported, with the hardware judged against it', () => {
    const { hw, web1 } = migratedWeb1();
    web1.primaryNode = 'node1';
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual([
      'configured primary is node1, expected node2',
      'secondary should be node1',
      'web1 should run exactly on node1, runs on [node2]',
      'disk 0: node1 is Secondary, expected Primary',
      'disk 0: node2 is Primary, expected Secondary',
      'disk symlinks on [node2], expected only node1',
    ]);
  });

  test('a source that is not the DRBD secondary afterwards is reported', () => {
    const { hw, web1 } = migratedWeb1();
    expect(checkInvariants({ kind: 'migrated', source: 'node3', target: 'node2' }, web1, detail(hw, web1))).toEqual([
      'secondary should be node3',
    ]);
  });

  test('a changed admin state is reported', () => {
    const { hw, web1 } = migratedWeb1();
    web1.adminState = 'down';
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual(['admin state changed to down']);
  });

  test('a migration that left disks_active false is reported (disks_active must stay true)', () => {
    const { hw, web1 } = migratedWeb1();
    web1.disksActive = false;
    // Spec, Invariants after a successful migration: "admin_state and disks_active are unchanged, so both stay up/true".
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual(['disks_active should be true']);
  });

  test('the instance running on both nodes is reported', () => {
    const { hw, web1 } = migratedWeb1();
    hw.nodes.node1!.processes.web1 = structuredClone(hw.nodes.node2!.processes.web1!);
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual(['web1 should run exactly on node2, runs on [node1, node2]']);
  });

  test('a copy on an unrelated node is reported', () => {
    const { hw, web1 } = migratedWeb1();
    hw.nodes.node3!.processes.web1 = structuredClone(hw.nodes.node2!.processes.web1!);
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual(['web1 should run exactly on node2, runs on [node2, node3]']);
  });

  test('the instance running nowhere is reported', () => {
    const { hw, web1 } = migratedWeb1();
    delete hw.nodes.node2!.processes.web1;
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual(['web1 should run exactly on node2, runs on []']);
  });

  test('a target left paused instead of running is reported', () => {
    const { hw, web1 } = migratedWeb1();
    const p = hw.nodes.node2!.processes.web1!;
    p.state = 'paused';
    p.pausedBy = 'stop';
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual(['web1 on node2 is paused (stop), not running']);
  });

  test('a target still waiting for the incoming migration is reported', () => {
    const { hw, web1 } = migratedWeb1();
    const p = hw.nodes.node2!.processes.web1!;
    p.state = 'incoming';
    p.incoming = { port: 8102 };
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual(['web1 on node2 is incoming, not running']);
  });

  test('dual-primary mode left on is reported for each node', () => {
    const { hw, web1 } = migratedWeb1();
    dev(hw, web1, 'node1').net = { dualPrimary: true };
    dev(hw, web1, 'node2').net = { dualPrimary: true };
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual([
      'disk 0: node1 still allows two primaries',
      'disk 0: node2 still allows two primaries',
    ]);
  });

  test('the old primary left Primary (both Primary in dual-primary mode) is reported', () => {
    const { hw, web1 } = migratedWeb1();
    const s = dev(hw, web1, 'node1');
    s.role = 'Primary';
    s.net = { dualPrimary: true };
    dev(hw, web1, 'node2').net = { dualPrimary: true };
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual([
      'disk 0: node1 is Primary, expected Secondary',
      'disk 0: node1 still allows two primaries',
      'disk 0: node2 still allows two primaries',
    ]);
  });

  test('a target that is still Secondary is reported', () => {
    const { hw, web1 } = migratedWeb1();
    dev(hw, web1, 'node2').role = 'Secondary';
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual(['disk 0: node2 is Secondary, expected Primary']);
  });

  test('a StandAlone end and its peer waiting for the connection are reported', () => {
    const { hw, web1 } = migratedWeb1();
    dev(hw, web1, 'node1').net = null;
    const d = detail(hw, web1);
    expect(d.disks[0]!.nodes.node1!.connection).toBe('StandAlone');
    expect(d.disks[0]!.nodes.node2!.connection).toBe('WFConnection');
    expect(checkInvariants(MIGRATED_WEB1, web1, d)).toEqual([
      'disk 0: node1 is StandAlone, expected Connected',
      'disk 0: node2 is WFConnection, expected Connected',
    ]);
  });

  test('both ends StandAlone are reported', () => {
    const { hw, web1 } = migratedWeb1();
    dev(hw, web1, 'node1').net = null;
    dev(hw, web1, 'node2').net = null;
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual([
      'disk 0: node1 is StandAlone, expected Connected',
      'disk 0: node2 is StandAlone, expected Connected',
    ]);
  });

  test('an Inconsistent disk is reported', () => {
    const { hw, web1 } = migratedWeb1();
    dev(hw, web1, 'node1').disk = 'Inconsistent';
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual(['disk 0: node1 disk is Inconsistent, expected UpToDate']);
  });

  test('a resync in progress is reported on both ends', () => {
    const { hw, web1 } = migratedWeb1();
    const src = dev(hw, web1, 'node2');
    const tgt = dev(hw, web1, 'node1');
    src.resync = { role: 'SyncSource', startedAt: NOW, total: 10240, rate: 60 };
    tgt.resync = { role: 'SyncTarget', startedAt: NOW, total: 10240, rate: 60 };
    tgt.disk = 'Inconsistent';
    const d = detail(hw, web1);
    expect(d.syncPercent).toEqual([{ node1: 0, node2: 0 }]);
    expect(checkInvariants(MIGRATED_WEB1, web1, d)).toEqual([
      'disk 0: node1 is SyncTarget, expected Connected',
      'disk 0: node1 disk is Inconsistent, expected UpToDate',
      'disk 0: node2 is SyncSource, expected Connected',
    ]);
  });

  test('a missing DRBD device on the old primary is reported', () => {
    const { hw, web1 } = migratedWeb1();
    delete hw.nodes.node1!.drbd[String(web1.disks[0]!.drbd!.minors[0])];
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual([
      'disk 0: node1 is Unknown, expected Secondary',
      'disk 0: node1 is Unconfigured, expected Connected',
      'disk 0: node1 disk is Diskless, expected UpToDate',
      'disk 0: node2 is WFConnection, expected Connected',
    ]);
  });

  test('disk symlinks left on the source are reported', () => {
    const { hw, web1 } = migratedWeb1();
    hw.nodes.node1!.links.web1 = true;
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual(['disk symlinks on [node1, node2], expected only node2']);
  });

  test('disk symlinks only on the wrong node are reported', () => {
    const { hw, web1 } = migratedWeb1();
    moveLinks(hw, 'web1', 'node2', 'node1');
    expect(checkInvariants(MIGRATED_WEB1, web1, detail(hw, web1))).toEqual(['disk symlinks on [node1], expected only node2']);
  });

  test('a sharedfile disk still open on the source is reported', () => {
    const { hw, files1 } = migratedFiles1();
    hw.nodes.node2!.shared['disk-5-0'] = { instance: 'files1', mode: 'shared' };
    hw.nodes.node3!.shared['disk-5-0'] = { instance: 'files1', mode: 'shared' };
    expect(checkInvariants(MIGRATED_FILES1, files1, detail(hw, files1))).toEqual(['disk 0: open on [node2, node3], expected only node3']);
  });

  test('a sharedfile disk open shared instead of exclusive on the target is reported', () => {
    const { hw, files1 } = migratedFiles1();
    hw.nodes.node3!.shared['disk-5-0'] = { instance: 'files1', mode: 'shared' };
    const d = detail(hw, files1);
    expect(d.disks[0]!.nodes).toEqual({ node3: { role: 'Primary', connection: 'Unconfigured', disk: 'UpToDate', dualPrimary: true } });
    expect(checkInvariants(MIGRATED_FILES1, files1, d)).toEqual(['disk 0: open shared on node3, expected exclusive']);
  });

  test('a sharedfile disk open nowhere is reported', () => {
    const { hw, files1 } = migratedFiles1();
    delete hw.nodes.node3!.shared['disk-5-0'];
    expect(checkInvariants(MIGRATED_FILES1, files1, detail(hw, files1))).toEqual(['disk 0: open on [], expected only node3']);
  });
});

describe("'reverted'", () => {
  const REVERTED = { kind: 'reverted', source: 'node1', target: 'node2' } as const;

  test('the untouched steady state passes', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    expect(checkInvariants(REVERTED, web1, detail(buildHardware(cfg), web1))).toEqual([]);
  });

  test('a configuration already pointing at the target is reported', () => {
    const { hw, web1 } = migratedWeb1();
    expect(checkInvariants(REVERTED, web1, detail(hw, web1))).toEqual(['configured primary is node2, expected node1']);
  });

  test('an incoming process left on the target is reported', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    const hw = buildHardware(cfg);
    hw.nodes.node2!.processes.web1 = { ...structuredClone(hw.nodes.node1!.processes.web1!), state: 'incoming', incoming: { port: 8102 } };
    expect(checkInvariants(REVERTED, web1, detail(hw, web1))).toEqual(['web1 should run exactly on node1, runs on [node1, node2]']);
  });

  test('a source left paused by a non-live migration (not resumed) is reported', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    const hw = buildHardware(cfg);
    const p = hw.nodes.node1!.processes.web1!;
    p.state = 'paused';
    p.pausedBy = 'stop';
    expect(checkInvariants(REVERTED, web1, detail(hw, web1))).toEqual(['web1 on node1 is paused (stop), not running']);
  });

  test('disks left dual-primary with the target promoted are reported', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    const hw = buildHardware(cfg);
    dev(hw, web1, 'node1').net = { dualPrimary: true };
    const t = dev(hw, web1, 'node2');
    t.net = { dualPrimary: true };
    t.role = 'Primary';
    expect(checkInvariants(REVERTED, web1, detail(hw, web1))).toEqual([
      'disk 0: node1 still allows two primaries',
      'disk 0: node2 is Primary, expected Secondary',
      'disk 0: node2 still allows two primaries',
    ]);
  });

  test('a sharedfile disk left open on the target is reported', () => {
    const cfg = cluster();
    const files1 = inst(cfg, 'files1');
    const hw = buildHardware(cfg);
    hw.nodes.node3!.shared['disk-5-0'] = { instance: 'files1', mode: 'shared' };
    expect(checkInvariants({ kind: 'reverted', source: 'node2', target: 'node3' }, files1, detail(hw, files1))).toEqual([
      'disk 0: open on [node2, node3], expected only node2',
    ]);
  });
});

describe("'cleaned-up'", () => {
  test('a cleanup that adopted the target (config rewritten to node2) passes', () => {
    const { hw, web1 } = migratedWeb1();
    expect(checkInvariants({ kind: 'cleaned-up' }, web1, detail(hw, web1))).toEqual([]);
  });

  test('a cleanup that kept the source passes on the untouched steady state', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    expect(checkInvariants({ kind: 'cleaned-up' }, web1, detail(buildHardware(cfg), web1))).toEqual([]);
  });

  test('a configuration that does not name the node running the instance is reported', () => {
    const { hw, web1 } = migratedWeb1();
    web1.primaryNode = 'node1';
    expect(checkInvariants({ kind: 'cleaned-up' }, web1, detail(hw, web1))).toEqual([
      'web1 should run exactly on node1, runs on [node2]',
      'disk 0: node1 is Secondary, expected Primary',
      'disk 0: node2 is Primary, expected Secondary',
      'disk symlinks on [node2], expected only node1',
    ]);
  });

  test('DRBD left StandAlone after cleanup is reported', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    const hw = buildHardware(cfg);
    dev(hw, web1, 'node1').net = null;
    dev(hw, web1, 'node2').net = null;
    expect(checkInvariants({ kind: 'cleaned-up' }, web1, detail(hw, web1))).toEqual([
      'disk 0: node1 is StandAlone, expected Connected',
      'disk 0: node2 is StandAlone, expected Connected',
    ]);
  });

  test('an instance still running on two nodes is reported', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    const hw = buildHardware(cfg);
    hw.nodes.node2!.processes.web1 = structuredClone(hw.nodes.node1!.processes.web1!);
    expect(checkInvariants({ kind: 'cleaned-up' }, web1, detail(hw, web1))).toEqual([
      'web1 should run exactly on node1, runs on [node1, node2]',
    ]);
  });
});

describe("'failed-over'", () => {
  const FAILED_OVER = { kind: 'failed-over', source: 'node1', target: 'node2', sourceOnline: true } as const;

  test('an admin-up failover passes when the instance runs on the target with its disks Primary there', () => {
    const { hw, web1 } = migratedWeb1();
    expect(checkInvariants(FAILED_OVER, web1, detail(hw, web1))).toEqual([]);
  });

  test('an admin-up failover may still be resyncing', () => {
    const { hw, web1 } = migratedWeb1();
    dev(hw, web1, 'node2').resync = { role: 'SyncSource', startedAt: NOW, total: 100, rate: 60 };
    const t = dev(hw, web1, 'node1');
    t.resync = { role: 'SyncTarget', startedAt: NOW, total: 100, rate: 60 };
    t.disk = 'Inconsistent';
    expect(checkInvariants(FAILED_OVER, web1, detail(hw, web1))).toEqual([]);
  });

  test('an admin-up failover reports the wrong primary, a stopped instance, inactive disks and a Secondary target', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    const hw = buildHardware(cfg);
    delete hw.nodes.node1!.processes.web1;
    web1.disksActive = false;
    expect(checkInvariants(FAILED_OVER, web1, detail(hw, web1))).toEqual([
      'configured primary is node1, expected node2',
      'web1 should run exactly on node2, runs on []',
      'disks_active should be true',
      'disk 0: node2 should be Primary, is Secondary',
    ]);
  });

  test('an admin-up failover reports the instance still running on an online source', () => {
    const { hw, web1 } = migratedWeb1();
    hw.nodes.node1!.processes.web1 = structuredClone(hw.nodes.node2!.processes.web1!);
    expect(checkInvariants(FAILED_OVER, web1, detail(hw, web1))).toEqual([
      'web1 should run exactly on node2, runs on [node1, node2]',
      'instance still runs on the source node1',
    ]);
  });

  test('an admin-up failover reports a target started paused', () => {
    const { hw, web1 } = migratedWeb1();
    const p = hw.nodes.node2!.processes.web1!;
    p.state = 'paused';
    p.pausedBy = 'stop';
    expect(checkInvariants(FAILED_OVER, web1, detail(hw, web1))).toEqual(['web1 on node2 is paused (stop), not running']);
  });

  /** web1 failed over while admin down: primary node2, nothing runs, disks shut down everywhere. */
  function downFailedOver(): { hw: SimState; web1: Instance } {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    web1.adminState = 'down';
    web1.disksActive = false;
    web1.primaryNode = 'node2';
    return { hw: buildHardware(cfg), web1 };
  }

  test('an admin-down failover passes when nothing runs and the disks are shut down on both nodes', () => {
    const { hw, web1 } = downFailedOver();
    const d = detail(hw, web1);
    expect(d.runningOn).toEqual([]);
    expect(d.disks[0]!.nodes.node1!.connection).toBe('Unconfigured');
    expect(d.disks[0]!.nodes.node2!.connection).toBe('Unconfigured');
    expect(checkInvariants(FAILED_OVER, web1, d)).toEqual([]);
  });

  test('an admin-down failover reports a running instance, active disks and assembled devices', () => {
    const { hw, web1 } = downFailedOver();
    web1.disksActive = true;
    const t = dev(hw, web1, 'node2');
    t.attached = true;
    t.net = { dualPrimary: false };
    hw.nodes.node2!.processes.web1 = {
      state: 'running',
      memory: 1024,
      vcpus: 2,
      runtime: '{}',
      dirtyRate: 2,
    };
    expect(checkInvariants(FAILED_OVER, web1, detail(hw, web1))).toEqual([
      'nothing should run, runs on node2',
      'disks_active should be false',
      'disk 0 on node2 should be shut down, is WFConnection',
    ]);
  });

  test('an admin-down failover ignores the disks of an offline source but not of an online one', () => {
    const { hw, web1 } = downFailedOver();
    const s = dev(hw, web1, 'node1');
    s.attached = true;
    s.net = null;
    expect(checkInvariants(FAILED_OVER, web1, detail(hw, web1))).toEqual(['disk 0 on node1 should be shut down, is StandAlone']);
    expect(checkInvariants({ ...FAILED_OVER, sourceOnline: false }, web1, detail(hw, web1))).toEqual([]);
  });

  test('an admin-down failover reports the instance still running on an online source, not on an offline one', () => {
    const { hw, web1 } = downFailedOver();
    hw.nodes.node1!.processes.web1 = { state: 'running', memory: 1024, vcpus: 2, runtime: '{}', dirtyRate: 2 };
    expect(checkInvariants(FAILED_OVER, web1, detail(hw, web1))).toEqual([
      'nothing should run, runs on node1',
      'instance still runs on the source node1',
    ]);
    expect(checkInvariants({ ...FAILED_OVER, sourceOnline: false }, web1, detail(hw, web1))).toEqual(['nothing should run, runs on node1']);
  });
});

describe('edges of the checks', () => {
  const FAILED_OVER = { kind: 'failed-over', source: 'node1', target: 'node2', sourceOnline: true } as const;

  /** web1 failed over while admin down (primary node2, disks shut down), as in 'failed-over' above. */
  function downFailedOver(): { hw: SimState; web1: Instance } {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    web1.adminState = 'down';
    web1.disksActive = false;
    web1.primaryNode = 'node2';
    return { hw: buildHardware(cfg), web1 };
  }
  const running = { state: 'running', memory: 1024, vcpus: 2, runtime: '{}', dirtyRate: 2 } as const;

  test('an admin-down failover running on both nodes names both', () => {
    const { hw, web1 } = downFailedOver();
    hw.nodes.node1!.processes.web1 = { ...running };
    hw.nodes.node2!.processes.web1 = { ...running };
    expect(checkInvariants({ ...FAILED_OVER, sourceOnline: false }, web1, detail(hw, web1))).toEqual([
      'nothing should run, runs on node1, node2',
    ]);
  });

  test('with the source offline, disks left assembled on the target are still reported', () => {
    const { hw, web1 } = downFailedOver();
    const t = dev(hw, web1, 'node2');
    t.attached = true;
    t.net = null;
    expect(checkInvariants({ ...FAILED_OVER, sourceOnline: false }, web1, detail(hw, web1))).toEqual([
      'disk 0 on node2 should be shut down, is StandAlone',
    ]);
  });

  test('a stopped instance whose disks are active is at rest without running anywhere', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    web1.adminState = 'down';
    const hw = buildHardware(cfg);
    expect(detail(hw, web1).runningOn).toEqual([]);
    expect(checkInvariants({ kind: 'cleaned-up' }, web1, detail(hw, web1))).toEqual([]);
    expect(checkInvariants({ kind: 'reverted', source: 'node1', target: 'node2' }, web1, detail(hw, web1))).toEqual([]);
  });

  test('disk symlinks also left on a node other than the primary are reported', () => {
    const cfg = cluster();
    const web1 = inst(cfg, 'web1');
    const hw = buildHardware(cfg);
    hw.nodes.node3!.links.web1 = true;
    expect(checkInvariants({ kind: 'cleaned-up' }, web1, detail(hw, web1))).toEqual([
      'disk symlinks on [node1, node3], expected only node1',
    ]);
  });

  test('a sharedfile disk open only on the source is reported', () => {
    const { hw, files1 } = migratedFiles1();
    delete hw.nodes.node3!.shared['disk-5-0'];
    hw.nodes.node2!.shared['disk-5-0'] = { instance: 'files1', mode: 'exclusive' };
    expect(checkInvariants(MIGRATED_FILES1, files1, detail(hw, files1))).toEqual(['disk 0: open on [node2], expected only node3']);
  });
});

describe('instance start and shutdown', () => {
  const STARTED = { kind: 'started', remembered: true } as const;
  const STOPPED = { kind: 'stopped', remembered: true } as const;
  const running = { state: 'running', memory: 1024, vcpus: 2, runtime: '{}', dirtyRate: 2 } as const;

  /** web1 (DRBD) and files1 (sharedfile) marked down with their disks shut down, as a shutdown leaves them. */
  function stoppedCluster(): { hw: SimState; web1: Instance; files1: Instance } {
    const cfg = cluster();
    for (const name of ['web1', 'files1']) {
      inst(cfg, name).adminState = 'down';
      inst(cfg, name).disksActive = false;
    }
    return { hw: buildHardware(cfg), web1: inst(cfg, 'web1'), files1: inst(cfg, 'files1') };
  }

  test('a started instance passes: running on its primary, DRBD assembled with its roles, symlinks on the primary', () => {
    const cfg = cluster();
    const hw = buildHardware(cfg);
    for (const name of ['web1', 'files1']) expect(checkInvariants(STARTED, inst(cfg, name), detail(hw, inst(cfg, name)))).toEqual([]);
  });

  test('a start that left it stopped, marked down, its disks inactive and unassembled is reported', () => {
    const { hw, web1 } = stoppedCluster();
    expect(checkInvariants(STARTED, web1, detail(hw, web1))).toEqual([
      'admin state should be up, is down',
      'web1 should run exactly on node1, runs on []',
      'disks_active should be true',
      'disk 0: node1 is Secondary, expected Primary',
      'disk 0: node1 is not assembled',
      'disk 0: node2 is not assembled',
      'disk symlinks on [], expected only node1',
    ]);
    expect(checkInvariants({ ...STARTED, remembered: false }, web1, detail(hw, web1))[0]).toBe(
      'web1 should run exactly on node1, runs on []',
    );
  });

  test('a start with the DRBD roles the wrong way round is reported', () => {
    const cfg = cluster();
    const hw = buildHardware(cfg);
    const web1 = inst(cfg, 'web1');
    dev(hw, web1, 'node1').role = 'Secondary';
    dev(hw, web1, 'node2').role = 'Primary';
    expect(checkInvariants(STARTED, web1, detail(hw, web1))).toEqual([
      'disk 0: node1 is Secondary, expected Primary',
      'disk 0: node2 is Primary, expected Secondary',
    ]);
  });

  test('a start with a sharedfile disk open elsewhere, or symlinks off the primary, is reported', () => {
    const cfg = cluster();
    const hw = buildHardware(cfg);
    const files1 = inst(cfg, 'files1');
    hw.nodes.node3!.shared['disk-5-0'] = { instance: 'files1', mode: 'exclusive' };
    hw.nodes.node3!.links.files1 = true;
    expect(checkInvariants(STARTED, files1, detail(hw, files1))).toEqual([
      'disk 0: open on [node2, node3], expected only node2',
      'disk symlinks on [node2, node3], expected only node2',
    ]);
    delete hw.nodes.node2!.shared['disk-5-0'];
    delete hw.nodes.node2!.links.files1;
    expect(checkInvariants(STARTED, files1, detail(hw, files1))).toEqual([
      'disk 0: open on [node3], expected only node2',
      'disk symlinks on [node3], expected only node2',
    ]);
  });

  test('a stopped instance running on two nodes, with symlinks on two, names both', () => {
    const { hw, web1 } = stoppedCluster();
    hw.nodes.node1!.processes.web1 = { ...running };
    hw.nodes.node2!.processes.web1 = { ...running };
    hw.nodes.node1!.links.web1 = true;
    hw.nodes.node2!.links.web1 = true;
    expect(checkInvariants(STOPPED, web1, detail(hw, web1))).toEqual([
      'nothing should run, runs on node1, node2',
      'disk symlinks on [node1, node2], expected none',
    ]);
  });

  test('a stopped instance passes: nothing runs, disks shut down or closed, no symlinks', () => {
    const { hw, web1, files1 } = stoppedCluster();
    expect(checkInvariants(STOPPED, web1, detail(hw, web1))).toEqual([]);
    expect(checkInvariants(STOPPED, files1, detail(hw, files1))).toEqual([]);
  });

  test('a shutdown that left it running, marked up, its disks active, assembled or open is reported', () => {
    const cfg = cluster();
    const hw = buildHardware(cfg);
    const web1 = inst(cfg, 'web1');
    const files1 = inst(cfg, 'files1');
    expect(checkInvariants(STOPPED, web1, detail(hw, web1))).toEqual([
      'admin state should be down, is up',
      'nothing should run, runs on node1',
      'disks_active should be false',
      'disk 0 on node1 should be shut down, is Connected',
      'disk 0 on node2 should be shut down, is Connected',
      'disk symlinks on [node1], expected none',
    ]);
    expect(checkInvariants({ ...STOPPED, remembered: false }, files1, detail(hw, files1))).toEqual([
      'nothing should run, runs on node2',
      'disks_active should be false',
      'disk 0 should be closed, is open on node2',
      'disk symlinks on [node2], expected none',
    ]);
    const { hw: hw2, web1: down } = stoppedCluster();
    hw2.nodes.node3!.processes.web1 = { ...running };
    expect(checkInvariants(STOPPED, down, detail(hw2, down))).toEqual(['nothing should run, runs on node3']);
  });
});
