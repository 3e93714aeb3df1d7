/**
 * The evacuation slots of node operations in the configuration store: granted under the limits
 * across the cluster (C in all, O per source, I per target), idempotent per lease, released, and
 * dropped once their node operation no longer runs.
 */
import { leaseCases, SQLITE } from '../helpers/store-cases.js';

leaseCases(SQLITE);
