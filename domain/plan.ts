/**
 * The steps an operation runs, as data (pure; mirrors the workflow's order). Each step has a stable
 * key: the workflow marks steps by key as it goes (the Web UI checklist, the `GanetiPhase` search
 * attribute), and a dry run returns the labels.
 */
import { isDrbd } from './instance.js';
import type { PlanSummary } from './ops.js';
import type { MigrationPlan } from './prereq.js';
import type { Instance } from './types.js';

/** Every step key an operation may mark, in no particular order (the plan decides the order). */
export const STEP_KEYS = [
  // every operation
  'prerequisites',
  'pre-hooks',
  'post-hooks',
  // migration
  'hv-version',
  'disk-consistency',
  'balloon',
  'migration-info',
  'close-target',
  'standalone',
  'dual-master',
  'sync',
  'open-shared',
  'accept',
  'migrate',
  'memory-transfer',
  'finalize',
  'commit',
  'close-source',
  'final-sync',
  'final-standalone',
  'single-master',
  'settle-sync',
  'open-exclusive',
  // cleanup
  'locate',
  'abort-migration',
  'close-demoted',
  // failover
  'shutdown',
  'deactivate-disks',
  'activate-disks',
  'start',
  // start and shutdown
  'admin-state',
] as const;
export type StepKey = (typeof STEP_KEYS)[number];

/** The phase an operation is in: the step running, a compensation, or how it ended. */
export type Phase = StepKey | 'aborting' | 'reverting' | 'done' | 'failed' | 'cancelled' | 'aborted';

export interface PlanStep {
  key: StepKey;
  label: string;
}

export function planSteps(plan: MigrationPlan, inst: Instance): PlanStep[] {
  const S = plan.sourceNode;
  const T = plan.targetNode;
  const drbd = isDrbd(inst);
  const s = (key: StepKey, label: string): PlanStep => ({ key, label });
  if (plan.operation === 'cleanup') {
    return [
      s('locate', 'Locate the instance on all online nodes'),
      s('abort-migration', 'Abort the half-done migration if it runs on both nodes'),
      s('commit', 'Point the configuration at the node that runs it'),
      s('close-demoted', 'Close the disks on the other node'),
      ...(drbd
        ? [
            s('sync', 'Wait for resync'),
            s('standalone', 'Disconnect DRBD (standalone)'),
            s('single-master', 'Reconnect DRBD single-master'),
            s('final-sync', 'Wait for resync'),
          ]
        : [s('open-exclusive', 'Open the disks exclusively on the primary')]),
    ];
  }
  if (plan.operation === 'failover') {
    if (inst.forthcoming) return [s('commit', `Set the primary node to ${T} (configuration only)`)];
    return [
      s('disk-consistency', `Check disk consistency on ${T}`),
      s('shutdown', `Shut down the instance on ${S}`),
      ...(drbd ? [] : [s('close-source', `Close the disks on ${S}`)]),
      s('deactivate-disks', 'Deactivate the disks on all nodes'),
      s('commit', `Set the primary node to ${T}`),
      ...(inst.adminState === 'up'
        ? [s('activate-disks', `Activate the disks with ${T} as primary`), s('start', `Start the instance on ${T}`)]
        : []),
    ];
  }
  const balloon = plan.currentMemory !== null && plan.targetFreeMemory !== null && plan.currentMemory > plan.targetFreeMemory;
  return [
    s('hv-version', `Compare hypervisor versions of ${S} and ${T}`),
    s('disk-consistency', `Check disk consistency on ${T}`),
    ...(balloon ? [s('balloon', `Balloon the instance to ${plan.targetFreeMemory} MiB`)] : []),
    s('migration-info', `Fetch migration information from ${S}`),
    s('close-target', `Close the disks on ${T}`),
    ...(drbd
      ? [s('standalone', 'Disconnect DRBD (standalone)'), s('dual-master', 'Reconnect DRBD dual-master'), s('sync', 'Wait for resync')]
      : []),
    s('open-shared', `Open the disks on ${S} and ${T} in shared mode`),
    s('accept', `Prepare ${T} to accept the instance`),
    s('migrate', `Migrate the instance (${plan.mode}) to ${T}`),
    s('memory-transfer', 'Transfer the memory'),
    s('finalize', `Finalize on ${S} and ${T}`),
    s('commit', `Set the primary node to ${T}`),
    s('close-source', `Close the disks on ${S}`),
    ...(drbd
      ? [
          s('final-sync', 'Wait for resync'),
          s('final-standalone', 'Disconnect DRBD (standalone)'),
          s('single-master', 'Reconnect DRBD single-master'),
          s('settle-sync', 'Wait for resync'),
        ]
      : [s('open-exclusive', `Open the disks on ${T} in exclusive mode`)]),
  ];
}

export function describePlan(plan: MigrationPlan, inst: Instance): PlanSummary {
  return {
    operation: plan.operation,
    sourceNode: plan.sourceNode,
    targetNode: plan.targetNode,
    mode: plan.mode,
    steps: planSteps(plan, inst).map((s) => s.label),
  };
}

/** The steps of `instance start` (`running`: already running, only the admin state is recorded) and `instance shutdown`. */
export function powerSteps(kind: 'start' | 'shutdown', inst: Instance, opts: { running: boolean; remember: boolean }): PlanStep[] {
  const P = inst.primaryNode;
  const s = (key: StepKey, label: string): PlanStep => ({ key, label });
  const mark = opts.remember ? [s('admin-state', `Mark the instance ${kind === 'start' ? 'up' : 'down'}`)] : [];
  if (kind === 'shutdown') {
    return [...mark, s('shutdown', `Shut down the instance on ${P}`), s('deactivate-disks', 'Deactivate the disks on all nodes')];
  }
  if (opts.running) return mark;
  return [...mark, s('activate-disks', `Activate the disks with ${P} as primary`), s('start', `Start the instance on ${P}`)];
}
