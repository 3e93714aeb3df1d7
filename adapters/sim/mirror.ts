/**
 * The hardware document as a `HardwareMirror`: a real hypervisor driver (the QEMU backend) records
 * the processes it observed in the node's `processes` table, so that the simulated DRBD ("device
 * held open"), `sim status` and the invariant checker see the real processes. A mirrored migration
 * carries `bandwidth: 0`, which keeps the simulator's own migration dynamics off it: only the real
 * hypervisor decides how a real migration ends.
 */
import type { HardwareMirror, MirrorEdit, MirroredNode, MirrorLogEntry, ObservedProcess } from '../../domain/ports.js';
import { SimHardware } from './hardware.js';
import type { SimNodeHw, SimProcess } from './state.js';

/** The document's entry for an observed process (`prev`: the entry it replaces). */
export function mirrorProcess(prev: SimProcess | undefined, o: ObservedProcess, now: number): SimProcess {
  const p: SimProcess = { state: o.state, memory: o.memory, vcpus: o.vcpus, runtime: o.runtime, dirtyRate: 0 };
  if (o.pausedBy) p.pausedBy = o.pausedBy;
  if (o.incoming) p.incoming = { port: o.incoming.port };
  const m = o.migration;
  if (m) {
    const same = prev?.migration && prev.migration.targetNode === m.targetNode && prev.migration.port === m.port;
    p.migration = {
      targetNode: m.targetNode,
      targetIp: m.targetIp,
      port: m.port,
      live: m.live,
      startedAt: same ? prev.migration!.startedAt : now,
      ram: o.memory,
      // No simulated dynamics on a real migration: with zero bandwidth the simulator never completes it.
      bandwidth: 0,
      dirtyRate: 0,
      status: m.status,
    };
    if (m.status !== 'active') p.migration.endedAt = same && prev.migration!.endedAt !== undefined ? prev.migration!.endedAt : now;
    if (m.error) p.migration.error = m.error;
  }
  return p;
}

function applyEdit(n: SimNodeHw, e: MirrorEdit, now: number): void {
  switch (e.kind) {
    case 'process':
      if (!e.process) delete n.processes[e.instance];
      else n.processes[e.instance] = mirrorProcess(n.processes[e.instance], e.process, now);
      return;
    case 'links':
      if (e.present) n.links[e.instance] = true;
      else delete n.links[e.instance];
      return;
    case 'keep-only':
      for (const k of Object.keys(n.processes)) if (!e.instances.includes(k)) delete n.processes[k];
      return;
  }
}

/** One node's view of the hardware document for a real hypervisor driver. */
export class SimHardwareMirror implements HardwareMirror {
  constructor(
    readonly hw: SimHardware,
    readonly nodeName: string,
  ) {}

  static forHome(home: string, node: string): SimHardwareMirror {
    return new SimHardwareMirror(SimHardware.forHome(home), node);
  }

  exists(): boolean {
    return this.hw.exists();
  }

  node(): MirroredNode | null {
    const { state: s } = this.hw.readNodes([this.nodeName]);
    const n = s.nodes[this.nodeName];
    if (!n) return null;
    return {
      powered: n.powered !== false,
      memoryTotal: n.memoryTotal,
      dom0Memory: s.params.dom0Memory,
      secondaryIp: n.secondaryIp,
      migrationBasePort: s.params.migrationBasePort,
      processes: Object.keys(n.processes),
      drbd: n.drbd,
      shared: n.shared,
    };
  }

  wouldChange(edits: MirrorEdit[]): boolean {
    if (!edits.length) return false;
    const { state, now } = this.hw.readNodes([this.nodeName]);
    const n = state.nodes[this.nodeName];
    if (!n) return false;
    const before = JSON.stringify(n.processes);
    for (const e of edits) applyEdit(n, e, now);
    return JSON.stringify(n.processes) !== before;
  }

  async apply(edits: MirrorEdit[], log?: MirrorLogEntry): Promise<void> {
    await this.hw.mutateNodes([this.nodeName], (s, now) => {
      const n = s.nodes[this.nodeName];
      if (n) for (const e of edits) applyEdit(n, e, now);
      if (log) SimHardware.log(s, { node: this.nodeName, ...log });
    });
  }
}
