/**
 * The node backends a node agent can run (`--backend`). Each returns the node's RPC surface,
 * wrapped in the fault-injection table of the simulated cluster's hardware document.
 */
import { Context } from '@temporalio/activity';
import type { NodeRpc } from '../cluster/ports.js';
import { withFaults } from '../cluster/sim/faults.js';
import { SimHardware } from '../cluster/sim/hardware.js';
import { SimNode } from '../cluster/sim/node.js';

export const BACKENDS = ['sim'] as const;
export type Backend = (typeof BACKENDS)[number];

export interface BackendOptions {
  /** GANETI_TEMPORAL_HOME: where the simulated hardware (and any backend state) lives. */
  home: string;
  node: string;
}

/** The simulated node, behind the fault-injection table; a hanging fault waits for cancellation. */
export function simBackend(home: string, node: string): NodeRpc {
  const hw = SimHardware.forHome(home);
  return withFaults(new SimNode(hw, node), hw, { hang: () => Context.current().cancelled });
}

export function createBackend(kind: Backend, o: BackendOptions): NodeRpc {
  switch (kind) {
    case 'sim':
      return simBackend(o.home, o.node);
  }
}
