/** Creates the default simulated cluster under the data directory (first run, `sim reset`). */
import type { ClusterConfig } from '../../domain/types.js';
import { buildHardware, defaultClusterConfig, type DefaultClusterOptions } from './cluster.js';
import type { SimHardware } from './hardware.js';
import type { SimParams } from './state.js';

/** The demo runs simulated hardware 4× faster than real time (a 1 GiB instance migrates in ~8 s). */
export const DEMO_SIM: Partial<SimParams> = { timeFactor: 4 };

/**
 * The default cluster for the qemu backend: the same nodes and instances, with secondary IPs on the
 * loopback network (QEMU must listen on them for incoming migrations) and 256 MiB guests.
 */
export const QEMU_CLUSTER: DefaultClusterOptions = { secondaryNet: '127.0.1.', instanceMemory: 256 };

/** What seeding needs of the configuration store (the caller picks the store). */
export interface SeedableConfig {
  exists(): boolean;
  initialise(doc: ClusterConfig): Promise<void>;
  config(): Promise<ClusterConfig>;
}

export async function seedDefaultCluster(
  config: SeedableConfig,
  hardware: SimHardware,
  sim: Partial<SimParams> = DEMO_SIM,
  options: DefaultClusterOptions = {},
): Promise<void> {
  await config.initialise(defaultClusterConfig(undefined, options));
  await hardware.replace(buildHardware(await config.config(), sim));
}

/** Seeds on first run (the qemu variant for the qemu backend); returns whether it did. */
export async function ensureCluster(config: SeedableConfig, hardware: SimHardware, backend: 'sim' | 'qemu' = 'sim'): Promise<boolean> {
  if (config.exists() && hardware.exists()) return false;
  await seedDefaultCluster(config, hardware, DEMO_SIM, backend === 'qemu' ? QEMU_CLUSTER : {});
  return true;
}
