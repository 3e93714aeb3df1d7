/**
 * The node backends a node agent can run (`--backend`). Each composes the node's RPC surface from a
 * hypervisor port and a storage port (`composeNode`, domain/compose-node.ts), and wires the two
 * sides' node-local questions: the storage side asks the hypervisor who holds a disk open; the QEMU
 * hypervisor asks the storage side whether a disk can be opened, reports what it observed to it, and
 * reads its node's facts from its host (here the simulated hardware).
 *
 *   sim    the simulated hypervisor and the simulated DRBD, over the same hardware document
 *   qemu   real QEMU processes driven over QMP (adapters/qemu/node.ts; docs/qemu.md) with the
 *          simulated DRBD as its storage port (block devices, DRBD, bridges)
 *
 * Fault injection is a decorator over the composed node (adapters/sim/faults.ts): the simulated node
 * always answers the fault-injection table of the hardware document, the qemu backend only when
 * fault injection is asked for (tests and chaos runs: `faultInjection`, or
 * GANETI_TEMPORAL_FAULT_INJECTION=1), never on the production path.
 */
import { Context } from '@temporalio/activity';
import { composeNode } from '../domain/compose-node.js';
import type { DiskHolders, NodeRpc } from '../domain/ports.js';
import { QemuHypervisor, type QemuNode, type QemuNodeOptions } from '../adapters/qemu/node.js';
import { ACCELS, type Accel } from '../adapters/qemu/runtime.js';
import { withFaults } from '../adapters/sim/faults.js';
import { SimHardware } from '../adapters/sim/hardware.js';
import { SimHypervisor } from '../adapters/sim/hypervisor.js';
import { SimNodeHost } from '../adapters/sim/mirror.js';
import { SimStorage } from '../adapters/sim/storage.js';

export const BACKENDS = ['sim', 'qemu'] as const;
export type Backend = (typeof BACKENDS)[number];

export interface BackendOptions {
  /** GANETI_TEMPORAL_HOME: where the simulated hardware (and any backend state) lives. */
  home: string;
  node: string;
  /** qemu: the accelerator (default tcg; GANETI_TEMPORAL_QEMU_ACCEL). */
  accel?: Accel;
  /** qemu: the QEMU binary (default qemu-system-x86_64; GANETI_TEMPORAL_QEMU_BINARY). */
  qemuBinary?: string;
  /** qemu: multiboot kernel to boot (default: the heartbeat guest built from source; GANETI_TEMPORAL_QEMU_KERNEL). */
  kernel?: string | null;
  /** qemu: directory of sharedfile images (default $GANETI_TEMPORAL_HOME/shared; GANETI_TEMPORAL_SHARED_DIR). */
  sharedDir?: string;
  /** qemu: answer the fault-injection table (default: GANETI_TEMPORAL_FAULT_INJECTION=1). */
  faultInjection?: boolean;
}

/** GANETI_TEMPORAL_FAULT_INJECTION=1: a qemu node answers the fault-injection table (tests, chaos runs). */
export const faultInjectionFromEnv = (env: NodeJS.ProcessEnv = process.env): boolean => env.GANETI_TEMPORAL_FAULT_INJECTION === '1';

/** The simulated node: the simulated hypervisor and DRBD over one hardware document (no fault injection). */
export function simNode(hw: SimHardware, node: string): SimHypervisor & NodeRpc {
  const hypervisor = new SimHypervisor(hw, node);
  return composeNode(hypervisor, new SimStorage(hw, node, hypervisor));
}

/** The simulated node, behind the fault-injection table; a hanging fault waits for cancellation. */
export function simBackend(home: string, node: string): NodeRpc {
  const hw = SimHardware.forHome(home);
  return withFaults(simNode(hw, node), hw, { hang: () => Context.current().cancelled });
}

/** qemu backend options from the environment (explicit options win). */
export function qemuOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<BackendOptions> {
  const out: Partial<BackendOptions> = {};
  const accel = env.GANETI_TEMPORAL_QEMU_ACCEL;
  if (accel) {
    if (!(ACCELS as readonly string[]).includes(accel))
      throw new Error(`GANETI_TEMPORAL_QEMU_ACCEL must be one of ${ACCELS.join(', ')}, not ${accel}`);
    out.accel = accel as Accel;
  }
  if (env.GANETI_TEMPORAL_QEMU_BINARY) out.qemuBinary = env.GANETI_TEMPORAL_QEMU_BINARY;
  if (env.GANETI_TEMPORAL_QEMU_KERNEL) out.kernel = env.GANETI_TEMPORAL_QEMU_KERNEL === 'none' ? null : env.GANETI_TEMPORAL_QEMU_KERNEL;
  if (env.GANETI_TEMPORAL_SHARED_DIR) out.sharedDir = env.GANETI_TEMPORAL_SHARED_DIR;
  return out;
}

export function qemuNodeOptions(o: BackendOptions): QemuNodeOptions {
  const e = { ...qemuOptionsFromEnv(), ...o };
  return {
    home: e.home,
    node: e.node,
    ...(e.accel ? { accel: e.accel } : {}),
    ...(e.qemuBinary ? { binary: e.qemuBinary } : {}),
    ...(e.kernel !== undefined ? { kernel: e.kernel } : {}),
    ...(e.sharedDir ? { sharedDir: e.sharedDir } : {}),
  };
}

/**
 * A QEMU node (no fault injection): the QEMU hypervisor composed with the simulated DRBD as its
 * storage port. The storage side asks the driver who holds a disk open (its own state files); the
 * driver asks the storage side whether a disk can be opened and reports what it observed to it (the
 * simulated storage records it for `sim status`, the invariant checker and chaos checks); its node's
 * facts (power, memory, secondary IP, port pool) are the simulated hardware's. A real-host
 * deployment would pass a host of its own and a real storage driver; nothing of the hypervisor
 * needs the simulator's document.
 */
export function qemuNode(o: QemuNodeOptions): QemuNode {
  const hw = SimHardware.forHome(o.home);
  // The two sides refer to each other; the storage side asks the hypervisor only once both exist.
  const holders: DiskHolders = { withHolders: (instance, step) => hypervisor.withHolders(instance, step) };
  const storage = new SimStorage(hw, o.node, holders);
  const hypervisor: QemuHypervisor = new QemuHypervisor(o, { host: new SimNodeHost(hw, o.node), storage });
  return composeNode(hypervisor, storage);
}

/** A real-QEMU node; behind the simulated cluster's fault-injection table only when asked for. */
export function qemuBackend(o: BackendOptions): NodeRpc {
  const node = qemuNode(qemuNodeOptions(o));
  if (!(o.faultInjection ?? faultInjectionFromEnv())) return node;
  return withFaults(node, SimHardware.forHome(o.home), { hang: () => Context.current().cancelled });
}

export function createBackend(kind: Backend, o: BackendOptions): NodeRpc {
  switch (kind) {
    case 'sim':
      return simBackend(o.home, o.node);
    case 'qemu':
      return qemuBackend(o);
  }
}
