/** Names shared by workflows, workers and clients (one definition, no drift). */

/** Every per-instance operation uses this workflow ID, so two operations on one instance exclude each other. */
export const workflowIdFor = (instance: string): string => `instance/${instance}`;

export const instanceFromWorkflowId = (workflowId: string): string | null =>
  workflowId.startsWith('instance/') ? workflowId.slice('instance/'.length) : null;

/** The orchestrator's task queue: workflows and configuration activities. */
export const orchestratorQueue = (cluster: string): string => `ganeti.${cluster}.orchestrator`;

/** A node agent's task queue: that node's RPCs. */
export const nodeQueue = (cluster: string, node: string): string => `ganeti.${cluster}.node.${node}`;

/** The CLI-facing command that repairs a half-done migration. */
export const cleanupCommand = (instance: string): string => `ganeti-temporal instance migrate --cleanup ${instance}`;
