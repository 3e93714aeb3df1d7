/**
 * A simulated cluster for node evacuation: `nodes` nodes and `instances` DRBD instances whose primary
 * is node1, their secondaries spread round-robin over the other nodes (tests of `node migrate`, the
 * evacuation benchmark). With `spread`, instance i runs on node (i mod nodes) with its secondary on
 * the next node instead (the scale benchmark: every node both sends and receives).
 */
import { ClusterConfigSchema, type ClusterConfig, type Instance } from '../../domain/types.js';

export interface EvacuationClusterOptions {
  nodes: number;
  instances: number;
  /** Every instance's maxmem, MiB (minmem is half of it). */
  memory?: number;
  /** Node memory, MiB. */
  nodeMemory?: number;
  /** Primaries spread over all nodes, each secondary on the next node (default: all on node1). */
  spread?: boolean;
}

export const evacuationInstanceName = (i: number): string => `vm${String(i).padStart(3, '0')}`;

export function evacuationClusterConfig(name: string, o: EvacuationClusterOptions): ClusterConfig {
  const nodes = Array.from({ length: o.nodes }, (_, i) => `node${i + 1}`);
  const memory = o.memory ?? 128;
  const minors: Record<string, number> = {};
  const instances: Instance[] = [];
  for (let i = 1; i <= o.instances; i++) {
    const pri = o.spread ? nodes[(i - 1) % o.nodes]! : 'node1';
    const sec = o.spread ? nodes[i % o.nodes]! : nodes[1 + ((i - 1) % (o.nodes - 1))]!;
    const ma = (minors[pri] = (minors[pri] ?? -1) + 1);
    const mb = (minors[sec] = (minors[sec] ?? -1) + 1);
    const hex = i.toString(16).padStart(4, '0');
    instances.push({
      name: evacuationInstanceName(i),
      uuid: `inst-${i}`,
      hypervisor: 'kvm',
      os: 'debootstrap+default',
      diskTemplate: 'drbd',
      primaryNode: pri,
      disks: [
        {
          uuid: `disk-${i}-0`,
          size: 1024,
          mode: 'rw',
          drbd: { nodes: [pri, sec], minors: [ma, mb], port: 11000 + i, secret: `s-${i}` },
        },
      ],
      adminState: 'up',
      disksActive: true,
      forthcoming: false,
      beparams: { minmem: memory / 2, maxmem: memory, vcpus: 1, always_failover: false, auto_balance: true },
      hvparams: {},
      nics: [{ uuid: `nic-${i}`, mac: `aa:00:00:00:${hex.slice(0, 2)}:${hex.slice(2)}`, mode: 'bridged', link: 'br0', vlan: '' }],
      tags: [],
    });
  }
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
          primaryIp: `192.0.2.${i + 11}`,
          secondaryIp: `198.51.100.${i + 11}`,
          memoryTotal: o.nodeMemory ?? 16384,
          hvVersion: '7.2.22',
        },
      ]),
    ),
    instances: Object.fromEntries(instances.map((i) => [i.name, i])),
  });
}
