/**
 * Activity factories. Node agents register `createNodeActivities` (the node's RPCs, each checking its
 * arguments first: `validate.ts`); the orchestrator registers `createOrchestratorActivities` (the
 * configuration store). Both map every error through `failures.ts`.
 */
import type { ConfigStore, HookRunner, NodeRpc, OperationControl } from '../domain/ports.js';
import { createConfigActivities } from './config.js';
import { createControlActivities } from './control.js';
import { createDiskActivities } from './disks.js';
import { mapFailures } from './failures.js';
import { createHookActivities } from './hooks.js';
import { createHypervisorActivities } from './hypervisor.js';
import { validateInputs } from './validate.js';

export function createNodeActivities(deps: { rpc: NodeRpc; hooks: HookRunner }) {
  return mapFailures(validateInputs({ ...createDiskActivities(deps), ...createHypervisorActivities(deps), ...createHookActivities(deps) }));
}

export function createOrchestratorActivities(deps: { config: ConfigStore; control?: OperationControl }) {
  return mapFailures({ ...createConfigActivities(deps), ...createControlActivities(deps) });
}

export type NodeActivities = ReturnType<typeof createNodeActivities>;

/**
 * The node activities that heartbeat themselves, with their progress as details (the long waits).
 * The node agents heartbeat every other activity for it (worker/heartbeat.ts).
 */
export const SELF_HEARTBEATING: ReadonlySet<string> = new Set(['waitForDiskSync', 'waitForMigration'] satisfies Array<
  keyof NodeActivities
>);
export type OrchestratorActivities = ReturnType<typeof createOrchestratorActivities>;
