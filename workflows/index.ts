/** The workflows the orchestrator registers (the only module the worker bundles). */
export { failoverInstanceWorkflow } from './failover-instance.js';
export { migrateInstanceWorkflow } from './migrate-instance.js';
export { nodeFailoverWorkflow, nodeMigrateWorkflow } from './node-workflows.js';
