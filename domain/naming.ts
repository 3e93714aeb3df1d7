/** Names shared by workflows, workers and clients (one definition, no drift). */

/** Every per-instance operation uses this workflow ID, so two operations on one instance exclude each other. */
export const workflowIdFor = (instance: string): string => `instance/${instance}`;

export const instanceFromWorkflowId = (workflowId: string): string | null =>
  workflowId.startsWith('instance/') ? workflowId.slice('instance/'.length) : null;

/** A node operation (`node migrate`, `node failover`) runs only under this ID: one at a time per node. */
export const nodeWorkflowIdFor = (node: string): string => `node/${node}`;

export const nodeFromWorkflowId = (workflowId: string): string | null =>
  workflowId.startsWith('node/') ? workflowId.slice('node/'.length) : null;

/** The orchestrator's task queue: workflows and configuration activities. */
export const orchestratorQueue = (cluster: string): string => `ganeti.${cluster}.orchestrator`;

/** A node agent's task queue: that node's RPCs. */
export const nodeQueue = (cluster: string, node: string): string => `ganeti.${cluster}.node.${node}`;

/** The CLI-facing command that starts an instance on its primary (the repair of a failover stopped after the swap). */
export const startCommand = (instance: string): string => `ganeti-temporal instance start ${instance}`;

/** The CLI-facing command that repairs a half-done migration. */
export const cleanupCommand = (instance: string): string => `ganeti-temporal instance migrate --cleanup ${instance}`;

/**
 * Why a failure finalize (abort) refuses (a deviation from Ganeti): a destination that runs holds the
 * complete state and may be the only current copy; a source whose transfer completed is stale. The
 * cleanup decides which copy is current and finishes or aborts the migration.
 */
export const runningCopyRefusal = (instance: string, state: string): string =>
  `instance ${instance} runs here (${state}) and may be the only current copy, refusing to stop it: run '${cleanupCommand(instance)}'`;
export const staleCopyRefusal = (instance: string): string =>
  `the memory transfer of ${instance} completed, refusing to resume this stale copy: run '${cleanupCommand(instance)}'`;
