/**
 * The tables of the configuration database (the same for SQLite and PostgreSQL) as Kysely types,
 * and the mapping between the configuration's objects and their rows.
 *
 * Each object is one row: the fields the store reads or writes on their own (a node's flags, an
 * instance's primary, admin state and disks-active flag, every reservation and lease field) are
 * columns; the rest of the object, as the schema (domain/types.ts) knows it, is a JSON text column.
 * Booleans are integers 0/1 (SQLite has no boolean type).
 */
import type { ClusterConfig, Disk, Instance, Node, Reservation, SlotLease } from '../../domain/types.js';

export interface SchemaVersionTable {
  version: number;
}

/** The one cluster row (id 1): the cluster parameters and the configuration's serial number. */
export interface ClusterTable {
  id: number;
  version: number;
  serial: number;
  data: string;
}

export interface NodeTable {
  name: string;
  uuid: string;
  offline: number;
  drained: number;
  data: string;
}

export interface InstanceTable {
  name: string;
  uuid: string;
  primary_node: string;
  admin_state: string;
  disks_active: number;
  data: string;
}

/** An instance's disks, by index. */
export interface DiskTable {
  instance: string;
  idx: number;
  uuid: string;
  data: string;
}

export interface ReservationTable {
  op_id: string;
  node: string;
  memory: number;
  instance: string;
  workflow_id: string;
  run_id: string;
}

export interface LeaseTable {
  id: string;
  workflow_id: string;
  run_id: string;
  instance: string;
  source: string;
  target: string | null;
}

export interface Database {
  schema_version: SchemaVersionTable;
  cluster: ClusterTable;
  nodes: NodeTable;
  instances: InstanceTable;
  disks: DiskTable;
  reservations: ReservationTable;
  leases: LeaseTable;
}

export const CLUSTER_ROW_ID = 1;

export function nodeRow(n: Node): NodeTable {
  const { name, uuid, offline, drained, ...rest } = n;
  return { name, uuid, offline: +offline, drained: +drained, data: JSON.stringify(rest) };
}

export function nodeFromRow(r: NodeTable): unknown {
  return { name: r.name, uuid: r.uuid, ...obj(r.data), offline: !!r.offline, drained: !!r.drained };
}

export function instanceRows(inst: Instance): { instance: InstanceTable; disks: DiskTable[] } {
  const { name, uuid, primaryNode, adminState, disksActive, disks, ...rest } = inst;
  return {
    instance: {
      name,
      uuid,
      primary_node: primaryNode,
      admin_state: adminState,
      disks_active: +disksActive,
      data: JSON.stringify(rest),
    },
    disks: disks.map((d, idx) => diskRow(name, idx, d)),
  };
}

function diskRow(instance: string, idx: number, d: Disk): DiskTable {
  const { uuid, ...rest } = d;
  return { instance, idx, uuid, data: JSON.stringify(rest) };
}

/** An instance as stored (not yet validated); `disks` are its disk rows (in any order). */
export function instanceFromRows(r: InstanceTable, disks: DiskTable[]): unknown {
  return {
    name: r.name,
    uuid: r.uuid,
    ...obj(r.data),
    primaryNode: r.primary_node,
    adminState: r.admin_state,
    disksActive: !!r.disks_active,
    disks: [...disks].sort((a, b) => a.idx - b.idx).map((d) => ({ uuid: d.uuid, ...obj(d.data) })),
  };
}

export function reservationRow(opId: string, r: Reservation): ReservationTable {
  return { op_id: opId, node: r.node, memory: r.memory, instance: r.instance, workflow_id: r.workflowId, run_id: r.runId };
}

export function reservationFromRow(r: ReservationTable): Reservation {
  return { node: r.node, memory: r.memory, instance: r.instance, workflowId: r.workflow_id, runId: r.run_id };
}

export function leaseRow(id: string, l: SlotLease): LeaseTable {
  return { id, workflow_id: l.workflowId, run_id: l.runId, instance: l.instance, source: l.source, target: l.target };
}

export function leaseFromRow(r: LeaseTable): SlotLease {
  return { workflowId: r.workflow_id, runId: r.run_id, instance: r.instance, source: r.source, target: r.target };
}

/** All the rows of a configuration, and the configuration (not yet validated) of its rows. */
export interface ConfigRows {
  cluster: ClusterTable;
  nodes: NodeTable[];
  instances: InstanceTable[];
  disks: DiskTable[];
  reservations: ReservationTable[];
  leases: LeaseTable[];
}

export function configToRows(cfg: ClusterConfig): ConfigRows {
  const inst = Object.values(cfg.instances).map(instanceRows);
  return {
    cluster: { id: CLUSTER_ROW_ID, version: cfg.version, serial: cfg.serial, data: JSON.stringify(cfg.cluster) },
    nodes: Object.values(cfg.nodes).map(nodeRow),
    instances: inst.map((i) => i.instance),
    disks: inst.flatMap((i) => i.disks),
    reservations: Object.entries(cfg.reservations).map(([id, r]) => reservationRow(id, r)),
    leases: Object.entries(cfg.leases).map(([id, l]) => leaseRow(id, l)),
  };
}

export function configFromRows(rows: ConfigRows): unknown {
  const disksOf = groupDisks(rows.disks);
  return {
    version: rows.cluster.version,
    serial: rows.cluster.serial,
    cluster: obj(rows.cluster.data),
    nodes: Object.fromEntries(rows.nodes.map((n) => [n.name, nodeFromRow(n)])),
    instances: Object.fromEntries(rows.instances.map((i) => [i.name, instanceFromRows(i, disksOf.get(i.name) ?? [])])),
    reservations: Object.fromEntries(rows.reservations.map((r) => [r.op_id, reservationFromRow(r)])),
    leases: Object.fromEntries(rows.leases.map((l) => [l.id, leaseFromRow(l)])),
  };
}

export function groupDisks(disks: DiskTable[]): Map<string, DiskTable[]> {
  const out = new Map<string, DiskTable[]>();
  for (const d of disks) out.set(d.instance, [...(out.get(d.instance) ?? []), d]);
  return out;
}

function obj(json: string): Record<string, unknown> {
  return JSON.parse(json) as Record<string, unknown>;
}
