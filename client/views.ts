/** What the CLI prints about configuration objects (JSON views and Ganeti-like text). */
import { filledHvParams, secondaryNodes } from '../domain/instance.js';
import type { ClusterConfig, ClusterSnapshot, Instance, Node } from '../domain/types.js';

export function instanceView(snap: ClusterSnapshot, inst: Instance) {
  return {
    name: inst.name,
    uuid: inst.uuid,
    primaryNode: inst.primaryNode,
    secondaryNodes: secondaryNodes(inst),
    diskTemplate: inst.diskTemplate,
    adminState: inst.adminState,
    disksActive: inst.disksActive,
    forthcoming: inst.forthcoming,
    memory: { minmem: inst.beparams.minmem, maxmem: inst.beparams.maxmem },
    vcpus: inst.beparams.vcpus,
    alwaysFailover: inst.beparams.always_failover,
    hvparams: filledHvParams(snap, inst),
    disks: inst.disks.map((d, index) => ({
      index,
      size: d.size,
      ...(d.drbd ? { nodes: d.drbd.nodes, minors: d.drbd.minors, port: d.drbd.port } : {}),
      ...(d.path ? { path: d.path } : {}),
    })),
    nics: inst.nics.map((n) => ({ mac: n.mac, mode: n.mode, link: n.link, ...(n.ip ? { ip: n.ip } : {}) })),
  };
}

export function instanceText(snap: ClusterSnapshot, inst: Instance): string {
  const v = instanceView(snap, inst);
  return [
    `Instance name: ${v.name}`,
    `UUID: ${v.uuid}`,
    `State: configured to be ${v.adminState}${v.forthcoming ? ' (forthcoming)' : ''}`,
    '  Nodes:',
    `    - primary: ${v.primaryNode}`,
    `    - secondaries: ${v.secondaryNodes.join(', ')}`,
    `  Disk template: ${v.diskTemplate}`,
    `  Disks active: ${v.disksActive}`,
    `  Memory: ${v.memory.minmem}-${v.memory.maxmem} MiB, VCPUs: ${v.vcpus}`,
    `  always_failover: ${v.alwaysFailover}`,
    `  Hypervisor: migration_mode=${v.hvparams.migration_mode}, migration_bandwidth=${v.hvparams.migration_bandwidth} MiB/s, migration_downtime=${v.hvparams.migration_downtime} ms`,
    '  Disks:',
    ...v.disks.map(
      (d) =>
        `    - disk/${d.index}: ${d.size} MiB${'nodes' in d && d.nodes ? `, drbd on ${d.nodes.join(' and ')} (minors ${d.minors?.join('/')}, port ${d.port})` : ''}${'path' in d && d.path ? `, file ${d.path}` : ''}`,
    ),
    '  NICs:',
    ...v.nics.map((n, i) => `    - nic/${i}: ${n.mac}, ${n.mode} on ${n.link}${n.ip ? `, ${n.ip}` : ''}`),
  ].join('\n');
}

export function nodeView(snap: ClusterSnapshot & { reservations?: ClusterConfig['reservations'] }, n: Node) {
  const instances = Object.values(snap.instances);
  return {
    name: n.name,
    uuid: n.uuid,
    primaryIp: n.primaryIp,
    secondaryIp: n.secondaryIp,
    offline: n.offline,
    drained: n.drained,
    vmCapable: n.vmCapable,
    group: n.group,
    memoryTotal: n.memoryTotal,
    hvVersion: n.hvVersion,
    master: snap.cluster.masterNode === n.name,
    primaryInstances: instances
      .filter((i) => i.primaryNode === n.name)
      .map((i) => i.name)
      .sort(),
    secondaryInstances: instances
      .filter((i) => secondaryNodes(i).includes(n.name))
      .map((i) => i.name)
      .sort(),
    /** Target memory held on this node by running operations. */
    reservations: Object.values(snap.reservations ?? {})
      .filter((r) => r.node === n.name)
      .map((r) => ({ instance: r.instance, memory: r.memory, workflowId: r.workflowId, runId: r.runId }))
      .sort((a, b) => a.workflowId.localeCompare(b.workflowId)),
  };
}

/** A fixed-width table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
