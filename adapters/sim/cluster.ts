/**
 * Building and inspecting a simulated cluster: hardware that matches a configuration, the default
 * demo cluster, the hardware-truth view (`sim status`) and deliberate breakage (`sim inject`).
 */
import { instanceNodes, isDrbd, rpcInstanceFor } from '../../domain/instance.js';
import { ClusterConfigSchema, otherSide, sideOf, type ClusterConfig, type DrbdSide, type Instance } from '../../domain/types.js';
import { serializeRuntime } from './hypervisor.js';
import {
  connectionState,
  DEFAULT_SIM_PARAMS,
  dropLink,
  handshake,
  resyncPercent,
  type DrbdConnection,
  type DrbdDiskState,
  type DrbdRole,
  type SimNodeHw,
  type SimParams,
  type SimProcess,
  type SimState,
} from './state.js';

export function emptyHardware(params: Partial<SimParams> = {}, realNow = Date.now()): SimState {
  const p = { ...DEFAULT_SIM_PARAMS, ...params };
  return {
    version: 1,
    clock: { realBase: realNow, simBase: 0, factor: p.timeFactor },
    advancedTo: 0,
    params: p,
    nodes: {},
    faults: [],
    nextFaultId: 1,
    log: [],
    logSeq: 0,
  };
}

/** Hardware in the steady state the configuration describes: up instances running, DRBD connected and in sync. */
export function buildHardware(cfg: ClusterConfig, params: Partial<SimParams> = {}): SimState {
  const s = emptyHardware(params);
  const bridges = [...new Set(Object.values(cfg.instances).flatMap((i) => i.nics.map((n) => n.link)))].sort();
  for (const n of Object.values(cfg.nodes)) {
    s.nodes[n.name] = {
      name: n.name,
      secondaryIp: n.secondaryIp,
      memoryTotal: n.memoryTotal,
      hvVersion: n.hvVersion,
      bridges: bridges.length ? bridges : ['br0'],
      processes: {},
      drbd: {},
      shared: {},
      links: {},
    };
  }
  for (const inst of Object.values(cfg.instances)) {
    if (inst.forthcoming) continue;
    const running = inst.adminState === 'up';
    const active = running || inst.disksActive;
    inst.disks.forEach((d, index) => {
      if (d.drbd) {
        ([0, 1] as const).forEach((side) => {
          if (!d.drbd) return;
          const hw = s.nodes[d.drbd.nodes[side]];
          if (!hw) return;
          const node = d.drbd.nodes[side];
          hw.drbd[String(d.drbd.minors[side])] = {
            instance: inst.name,
            diskIndex: index,
            size: d.size,
            peerNode: d.drbd.nodes[otherSide(side)],
            peerMinor: d.drbd.minors[otherSide(side)],
            port: d.drbd.port,
            attached: active,
            role: active && node === inst.primaryNode ? 'Primary' : 'Secondary',
            net: active ? { dualPrimary: false } : null,
            disk: 'UpToDate',
            outOfSync: 0,
            resync: null,
          };
        });
      } else if (inst.diskTemplate === 'sharedfile' && active) {
        s.nodes[inst.primaryNode]!.shared[d.uuid] = { instance: inst.name, mode: 'exclusive' };
      }
    });
    if (running) startProcess(s, cfg, inst, inst.primaryNode);
    if (active) s.nodes[inst.primaryNode]!.links[inst.name] = true;
  }
  return s;
}

function startProcess(s: SimState, cfg: ClusterConfig, inst: Instance, node: string): void {
  const rpc = rpcInstanceFor(cfg, inst, node);
  const proc: SimProcess = {
    state: 'running',
    memory: inst.beparams.maxmem,
    vcpus: inst.beparams.vcpus,
    runtime: serializeRuntime(rpc),
    dirtyRate: s.params.guestDirtyRate,
  };
  s.nodes[node]!.processes[inst.name] = proc;
}

// ---- the default cluster ------------------------------------------------------------------------

/** Variations of the default cluster (none: the simulated demo cluster, unchanged). */
export interface DefaultClusterOptions {
  /**
   * Secondary (replication) IPs are `<secondaryNet><11+i>`; default `198.51.100.` (documentation
   * addresses, never bound). The qemu backend needs addresses QEMU can listen on, e.g. `127.0.1.`
   * (all of 127.0.0.0/8 is loopback on Linux).
   */
  secondaryNet?: string;
  /** Primary (management) IPs are `<primaryNet><11+i>`; default `192.0.2.` (documentation addresses). */
  primaryNet?: string;
  /** Every instance's maxmem (minmem is half of it); default 1024/2048 MiB as in the demo. */
  instanceMemory?: number;
}

export function defaultClusterConfig(name = 'ganeti-sim', opts: DefaultClusterOptions = {}): ClusterConfig {
  const nodes = ['node1', 'node2', 'node3'];
  const secondaryNet = opts.secondaryNet ?? '198.51.100.';
  const hv: Record<string, string> = { node1: '7.2.22', node2: '7.2.22', node3: '7.2.19' };
  const minors: Record<string, number> = {};
  let port = 11000;
  const drbd = (a: string, b: string) => {
    const ma = (minors[a] = (minors[a] ?? -1) + 1);
    const mb = (minors[b] = (minors[b] ?? -1) + 1);
    return { nodes: [a, b] as [string, string], minors: [ma, mb] as [number, number], port: port++, secret: `secret-${port}` };
  };
  let serial = 0;
  const mac = () => `aa:00:00:00:00:${(++serial).toString(16).padStart(2, '0')}`;
  const nic = (i: number) => ({ uuid: `nic-${i}`, mac: mac(), mode: 'bridged' as const, link: 'br0', vlan: '' });
  const drbdInstance = (n: number, nm: string, pri: string, sec: string, mem: number): Instance => ({
    name: nm,
    uuid: `inst-${n}`,
    hypervisor: 'kvm',
    os: 'debootstrap+default',
    diskTemplate: 'drbd',
    primaryNode: pri,
    disks: [{ uuid: `disk-${n}-0`, size: 10240, mode: 'rw', drbd: drbd(pri, sec) }],
    adminState: 'up',
    disksActive: true,
    forthcoming: false,
    beparams: {
      minmem: (opts.instanceMemory ?? mem) / 2,
      maxmem: opts.instanceMemory ?? mem,
      vcpus: 2,
      always_failover: false,
      auto_balance: true,
    },
    hvparams: {},
    nics: [nic(n)],
    tags: [],
  });
  const instances: Instance[] = [
    drbdInstance(1, 'web1', 'node1', 'node2', 1024),
    drbdInstance(2, 'web2', 'node2', 'node3', 1024),
    drbdInstance(3, 'web3', 'node3', 'node1', 1024),
    drbdInstance(4, 'db1', 'node1', 'node3', 2048),
    {
      name: 'files1',
      uuid: 'inst-5',
      hypervisor: 'kvm',
      os: 'debootstrap+default',
      diskTemplate: 'sharedfile',
      primaryNode: 'node2',
      disks: [{ uuid: 'disk-5-0', size: 4096, mode: 'rw', path: 'files1/disk0.img' }],
      adminState: 'up',
      disksActive: true,
      forthcoming: false,
      beparams: {
        minmem: (opts.instanceMemory ?? 1024) / 2,
        maxmem: opts.instanceMemory ?? 1024,
        vcpus: 1,
        always_failover: false,
        auto_balance: true,
      },
      hvparams: {},
      nics: [nic(5)],
      tags: [],
    },
  ];
  return ClusterConfigSchema.parse({
    version: 1,
    serial: 1,
    cluster: { name, uuid: `cluster-${name}`, masterNode: 'node1' },
    nodes: Object.fromEntries(
      nodes.map((n, i) => [
        n,
        {
          name: n,
          uuid: `node-${i + 1}`,
          primaryIp: `${opts.primaryNet ?? '192.0.2.'}${i + 11}`,
          secondaryIp: `${secondaryNet}${i + 11}`,
          memoryTotal: 16384,
          hvVersion: hv[n],
        },
      ]),
    ),
    instances: Object.fromEntries(instances.map((i) => [i.name, i])),
  });
}

// ---- hardware truth -----------------------------------------------------------------------------

export interface DiskNodeStatus {
  role: DrbdRole | 'Unknown';
  connection: DrbdConnection;
  disk: DrbdDiskState;
  dualPrimary: boolean;
}

/** The exact shape `sim status <instance> --json` prints. */
export interface InstanceHwStatus {
  instance: string;
  runningOn: string[];
  disks: Array<{ index: number; nodes: Record<string, DiskNodeStatus> }>;
}

/** `InstanceHwStatus` plus what the invariant checker also needs. */
export interface InstanceHwDetail extends InstanceHwStatus {
  processes: Record<string, { state: SimProcess['state']; paused?: string; migration?: string }>;
  /** Nodes holding the instance's disk symlinks. */
  links: string[];
  /** Per disk and node: resync percentage when resyncing. */
  syncPercent: Array<Record<string, number | null>>;
}

export function instanceHwDetail(s: SimState, now: number, inst: Instance): InstanceHwDetail {
  const nodes = Object.values(s.nodes);
  const processes: InstanceHwDetail['processes'] = {};
  for (const n of nodes) {
    const p = n.processes[inst.name];
    if (!p) continue;
    processes[n.name] = {
      state: p.state,
      ...(p.pausedBy ? { paused: p.pausedBy } : {}),
      ...(p.migration ? { migration: `${p.migration.status} to ${p.migration.targetNode}` } : {}),
    };
  }
  const syncPercent: InstanceHwDetail['syncPercent'] = [];
  const disks = inst.disks.map((d, index) => {
    const out: Record<string, DiskNodeStatus> = {};
    const pct: Record<string, number | null> = {};
    if (d.drbd) {
      d.drbd.nodes.forEach((node, side) => {
        const dev = s.nodes[node]?.drbd[String(d.drbd!.minors[side])];
        if (!dev) {
          out[node] = { role: 'Unknown', connection: 'Unconfigured', disk: 'Diskless', dualPrimary: false };
          pct[node] = null;
          return;
        }
        out[node] = {
          role: dev.role,
          connection: connectionState(s, dev),
          disk: dev.attached ? dev.disk : 'Diskless',
          dualPrimary: dev.net?.dualPrimary ?? false,
        };
        pct[node] = resyncPercent(dev, now);
      });
    } else {
      for (const n of nodes) {
        const open = n.shared[d.uuid];
        if (open) out[n.name] = { role: 'Primary', connection: 'Unconfigured', disk: 'UpToDate', dualPrimary: open.mode === 'shared' };
      }
    }
    syncPercent.push(pct);
    return { index, nodes: out };
  });
  return {
    instance: inst.name,
    runningOn: Object.keys(processes).sort(),
    disks,
    processes,
    links: nodes
      .filter((n) => n.links[inst.name])
      .map((n) => n.name)
      .sort(),
    syncPercent,
  };
}

export function instanceHwStatus(s: SimState, now: number, inst: Instance): InstanceHwStatus {
  const { instance, runningOn, disks } = instanceHwDetail(s, now, inst);
  return { instance, runningOn, disks };
}

// ---- deliberate breakage ------------------------------------------------------------------------

export const INJECT_STATES = ['running', 'stopped', 'degraded', 'standalone', 'unresponsive'] as const;
export type InjectState = (typeof INJECT_STATES)[number];

/** A requested breakage that does not fit the instance or node (refused, nothing changed). */
export class InjectRefusedError extends Error {
  override readonly name = 'InjectRefusedError';
}

/**
 * Creates a broken situation on purpose:
 * - `running`: a copy of the instance runs on the node (whatever runs elsewhere);
 * - `stopped`: the instance's process on the node is killed;
 * - `degraded`: the node's DRBD devices of the instance lose their data (Inconsistent) and their link;
 * - `standalone`: both ends of the instance's DRBD devices drop their network configuration;
 * - `unresponsive`: the guest on the node ignores ACPI power-down (a shutdown must force it).
 */
export function inject(s: SimState, now: number, cfg: ClusterConfig, inst: Instance, node: string, what: InjectState): void {
  const hw: SimNodeHw | undefined = s.nodes[node];
  if (!hw) throw new InjectRefusedError(`node ${node} has no simulated hardware`);
  switch (what) {
    case 'running':
      if (!hw.processes[inst.name] || hw.processes[inst.name]!.state === 'incoming') startProcess(s, cfg, inst, node);
      else hw.processes[inst.name]!.state = 'running';
      return;
    case 'stopped':
      delete hw.processes[inst.name];
      return;
    case 'unresponsive': {
      const p = hw.processes[inst.name];
      if (!p) throw new InjectRefusedError(`${inst.name} does not run on ${node}`);
      p.ignoresAcpi = true;
      return;
    }
    case 'degraded':
    case 'standalone': {
      if (!isDrbd(inst)) throw new InjectRefusedError(`instance ${inst.name} has no DRBD disks (template ${inst.diskTemplate})`);
      if (!instanceNodes(inst).includes(node)) throw new InjectRefusedError(`node ${node} holds no disk of ${inst.name}`);
      for (const d of inst.disks) {
        if (!d.drbd) continue;
        const own = sideOf(d.drbd, node);
        const sides: DrbdSide[] = what === 'degraded' ? (own === null ? [] : [own]) : [0, 1];
        for (const side of sides) {
          const dev = s.nodes[d.drbd.nodes[side]]?.drbd[String(d.drbd.minors[side])];
          if (!dev) continue;
          if (dev.net) dropLink(s, dev, now);
          dev.net = null;
          if (what === 'degraded') dev.disk = 'Inconsistent';
        }
      }
      return;
    }
  }
}

/** Reconnects a device pair (used by tests that heal by hand). */
export function reconnect(s: SimState, now: number, inst: Instance): void {
  for (const d of inst.disks) {
    if (!d.drbd) continue;
    d.drbd.nodes.forEach((node, side) => {
      const dev = s.nodes[node]?.drbd[String(d.drbd!.minors[side])];
      if (dev && dev.attached && !dev.net) {
        dev.net = { dualPrimary: false };
        handshake(s, dev, now);
      }
    });
  }
}

/**
 * Powers a node off (everything on it stops: processes gone, DRBD devices unconfigured, and it
 * answers no RPC) or on again (DRBD stays unconfigured until disks are activated, as after a reboot).
 */
export function setPower(s: SimState, now: number, node: string, on: boolean): void {
  const hw = s.nodes[node];
  if (!hw) throw new Error(`node ${node} has no simulated hardware`);
  if (on) {
    hw.powered = true;
    return;
  }
  for (const d of Object.values(hw.drbd)) {
    if (d.net) dropLink(s, d, now);
    d.net = null;
    d.attached = false;
    d.role = 'Secondary';
  }
  hw.processes = {};
  hw.shared = {};
  hw.links = {};
  hw.powered = false;
}
