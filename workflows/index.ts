/** The workflows the orchestrator registers (the only module the worker bundles). */
export { migrateInstanceWorkflow } from './migrate-instance.js';
