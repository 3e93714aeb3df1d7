/** The steps an operation would run, for dry runs (pure; mirrors the workflow's order). */
import { isDrbd } from './instance.js';
import type { PlanSummary } from './ops.js';
import type { MigrationPlan } from './prereq.js';
import type { Instance } from './types.js';

export function describePlan(plan: MigrationPlan, inst: Instance): PlanSummary {
  const S = plan.sourceNode;
  const T = plan.targetNode;
  const drbd = isDrbd(inst);
  let steps: string[];
  if (plan.operation === 'cleanup') {
    steps = [
      'locate the instance on all online nodes (instance_list)',
      'abort the half-done migration if it runs on both nodes',
      'point the configuration at the node that runs it',
      'close the disks on the other node',
      ...(drbd ? ['wait for resync', 'disconnect DRBD (standalone)', 'reconnect DRBD single-master', 'wait for resync'] : ['open the disks exclusively on the primary']),
    ];
  } else if (plan.operation === 'failover') {
    steps = [
      `check disk consistency on ${T}`,
      `shut down the instance on ${S}`,
      ...(drbd ? [] : [`close the disks on ${S}`]),
      'deactivate the disks on all nodes',
      `set the primary node to ${T}`,
      ...(inst.adminState === 'up' ? [`activate the disks with ${T} as primary`, `start the instance on ${T}`] : []),
    ];
  } else {
    steps = [
      `compare hypervisor versions of ${S} and ${T}`,
      `check disk consistency on ${T}`,
      ...(plan.currentMemory !== null && plan.targetFreeMemory !== null && plan.currentMemory > plan.targetFreeMemory
        ? [`balloon the instance to ${plan.targetFreeMemory} MiB`]
        : []),
      `fetch migration information from ${S}`,
      `close the disks on ${T}`,
      ...(drbd ? ['disconnect DRBD (standalone)', 'reconnect DRBD dual-master', 'wait for resync'] : []),
      `open the disks on ${S} and ${T} in shared mode`,
      `prepare ${T} to accept the instance`,
      `migrate the instance (${plan.mode}) to ${T}`,
      'wait for the memory transfer',
      `finalize on ${S} and ${T}`,
      `set the primary node to ${T}`,
      `close the disks on ${S}`,
      ...(drbd
        ? ['wait for resync', 'disconnect DRBD (standalone)', 'reconnect DRBD single-master', 'wait for resync']
        : [`open the disks on ${T} in exclusive mode`]),
    ];
  }
  return { operation: plan.operation, sourceNode: S, targetNode: T, mode: plan.mode, steps };
}
