/**
 * The hardware document beside a real hypervisor driver (the QEMU backend), which never touches the
 * document itself:
 * - what the driver observed reaches the node's `processes` table through the simulated storage
 *   port (`SimStorage.hypervisorObserved` → `recordObserved`), so that `sim status`, the invariant
 *   checker and the chaos checks see the real processes. A mirrored migration carries
 *   `bandwidth: 0`, which keeps the simulator's own migration dynamics off it: only the real
 *   hypervisor decides how a real migration ends.
 * - the node's facts (power, memory, secondary IP, port pool) are the simulated hardware's
 *   (`SimNodeHost`, the driver's `NodeHost`); on a real node they would come from the host.
 */
import type { MirrorEdit, NodeFacts, NodeHost, ObservedProcess, ObservedReport } from '../../domain/ports.js';
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

/**
 * Records what a real hypervisor observed on `node` (the simulated storage's `hypervisorObserved`):
 * the edits and the RPC log entry in one write; with `unlessUnchanged`, nothing when the edits change
 * nothing recorded (status polls would otherwise rewrite the document every few milliseconds).
 */
export async function recordObserved(hw: SimHardware, node: string, report: ObservedReport): Promise<void> {
  const { edits, log } = report;
  if (report.unlessUnchanged && !wouldChange(hw, node, edits)) return;
  await hw.mutateNodes([node], (s, now) => {
    const n = s.nodes[node];
    if (n) for (const e of edits) applyEdit(n, e, now);
    if (log) SimHardware.log(s, { node, ...log });
  });
}

/** Whether applying `edits` would change the node's process table. */
export function wouldChange(hw: SimHardware, node: string, edits: MirrorEdit[]): boolean {
  if (!edits.length) return false;
  const { state, now } = hw.readNodes([node]);
  const n = state.nodes[node];
  if (!n) return false;
  const before = JSON.stringify(n.processes);
  for (const e of edits) applyEdit(n, e, now);
  return JSON.stringify(n.processes) !== before;
}

/** The simulated hardware as a hypervisor driver's `NodeHost`: the node's facts in the document. */
export class SimNodeHost implements NodeHost {
  constructor(
    readonly hw: SimHardware,
    readonly nodeName: string,
  ) {}

  exists(): boolean {
    return this.hw.exists();
  }

  facts(): NodeFacts | null {
    const { state: s } = this.hw.readNodes([this.nodeName]);
    const n = s.nodes[this.nodeName];
    if (!n) return null;
    return {
      powered: n.powered !== false,
      memoryTotal: n.memoryTotal,
      dom0Memory: s.params.dom0Memory,
      secondaryIp: n.secondaryIp,
      migrationBasePort: s.params.migrationBasePort,
    };
  }
}
