/** Pure read helpers over the cluster model: derived secondaries, mirroring class, filled parameters. */
import { EXT_MIRROR_TEMPLATES, INT_MIRROR_TEMPLATES, otherSide, sideOf } from './model.js';
import type { ClusterSnapshot, FilledHvParams, Instance } from './types.js';

export type MirrorKind = 'internal' | 'external' | 'none';

export function mirrorKind(inst: Instance): MirrorKind {
  if (INT_MIRROR_TEMPLATES.includes(inst.diskTemplate)) return 'internal';
  if (EXT_MIRROR_TEMPLATES.includes(inst.diskTemplate)) return 'external';
  return 'none';
}

export const isDrbd = (inst: Instance): boolean => inst.diskTemplate === 'drbd';

/** Ganeti derives secondaries from the disks' node trees; so do we. */
export function secondaryNodes(inst: Instance): string[] {
  const out: string[] = [];
  for (const d of inst.disks) {
    for (const n of d.drbd?.nodes ?? []) {
      if (n !== inst.primaryNode && !out.includes(n)) out.push(n);
    }
  }
  return out;
}

/** Every node holding a piece of the instance: primary first, then the secondaries. */
export function instanceNodes(inst: Instance): string[] {
  return [inst.primaryNode, ...secondaryNodes(inst)];
}

export function filledHvParams(snap: ClusterSnapshot, inst: Instance): FilledHvParams {
  const d = snap.cluster.hvparams;
  return {
    migration_mode: inst.hvparams.migration_mode ?? d.migration_mode,
    migration_bandwidth: inst.hvparams.migration_bandwidth ?? d.migration_bandwidth,
    migration_downtime: inst.hvparams.migration_downtime ?? d.migration_downtime,
  };
}

/** Bridges the instance's bridged NICs need on a node (routed and OVS NICs are not checked, as in Ganeti). */
export function requiredBridges(inst: Instance): string[] {
  return [...new Set(inst.nics.filter((n) => n.mode === 'bridged').map((n) => n.link))];
}

/** The per-disk facts a node needs to act on an instance's disks (Ganeti ships the disk objects with each RPC). */
export interface RpcDisk {
  index: number;
  uuid: string;
  size: number;
  template: Instance['diskTemplate'];
  /** DRBD: this node's minor, the peer and its minor, the port. */
  drbd?: { minor: number; peerNode: string; peerMinor: number; peerIp: string; port: number };
  path?: string;
}

export interface RpcInstance {
  name: string;
  uuid: string;
  memory: number;
  vcpus: number;
  bridges: string[];
  hvparams: FilledHvParams;
  disks: RpcDisk[];
}

/** Builds the instance description sent to `node` along with a node RPC. */
export function rpcInstanceFor(snap: ClusterSnapshot, inst: Instance, node: string): RpcInstance {
  return {
    name: inst.name,
    uuid: inst.uuid,
    memory: inst.beparams.maxmem,
    vcpus: inst.beparams.vcpus,
    bridges: requiredBridges(inst),
    hvparams: filledHvParams(snap, inst),
    disks: inst.disks.map((d, index) => {
      const out: RpcDisk = { index, uuid: d.uuid, size: d.size, template: inst.diskTemplate };
      if (d.drbd) {
        const self = sideOf(d.drbd, node);
        if (self !== null) {
          const peer = otherSide(self);
          const peerNode = d.drbd.nodes[peer];
          out.drbd = {
            minor: d.drbd.minors[self],
            peerNode,
            peerMinor: d.drbd.minors[peer],
            peerIp: snap.nodes[peerNode]?.secondaryIp ?? '0.0.0.0',
            port: d.drbd.port,
          };
        }
      }
      if (d.path) out.path = d.path;
      return out;
    }),
  };
}
