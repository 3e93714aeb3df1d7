/**
 * The node backends a node agent can run (`--backend`). Each returns the node's RPC surface; the
 * simulated node always answers the fault-injection table of the simulated cluster's hardware
 * document, the qemu backend only when fault injection is asked for (tests and chaos runs:
 * `faultInjection`, or GANETI_TEMPORAL_FAULT_INJECTION=1), never on the production path.
 *
 *   sim    the simulated node (hypervisor and DRBD in the hardware document)
 *   qemu   real QEMU processes driven over QMP for the hypervisor RPCs (adapters/qemu/node.ts;
 *          docs/qemu.md), composed here with the simulated node as its storage side (block devices,
 *          DRBD, bridges) and the hardware document as its mirror
 */
import { Context } from '@temporalio/activity';
import type { NodeRpc } from '../domain/ports.js';
import { QemuNode, type QemuNodeOptions } from '../adapters/qemu/node.js';
import { ACCELS, type Accel } from '../adapters/qemu/runtime.js';
import { withFaults } from '../adapters/sim/faults.js';
import { SimHardware } from '../adapters/sim/hardware.js';
import { SimHardwareMirror } from '../adapters/sim/mirror.js';
import { SimNode } from '../adapters/sim/node.js';
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

/** The simulated node, behind the fault-injection table; a hanging fault waits for cancellation. */
export function simBackend(home: string, node: string): NodeRpc {
  const hw = SimHardware.forHome(home);
  return withFaults(new SimNode(hw, node), hw, { hang: () => Context.current().cancelled });
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
 * A QEMU driver (no fault injection): the simulated node answers its block-device, DRBD and bridge
 * RPCs, and it mirrors the processes it observes into the hardware document (`sim status`, the
 * invariant checker and the simulated DRBD's "held open" checks read them there).
 */
export function qemuNode(o: QemuNodeOptions): QemuNode {
  const hw = SimHardware.forHome(o.home);
  return new QemuNode(o, { storage: new SimStorage(hw, o.node), mirror: new SimHardwareMirror(hw, o.node) });
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
