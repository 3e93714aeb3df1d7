/** The workflows the orchestrator registers (the only module the worker bundles). */
export { failoverInstanceWorkflow } from './failover-instance.js';
export { migrateInstanceWorkflow } from './migrate-instance.js';
export { shutdownInstanceWorkflow } from './shutdown-instance.js';
export { startInstanceWorkflow } from './start-instance.js';
export { nodeFailoverWorkflow, nodeMigrateWorkflow } from './node-workflows.js';
