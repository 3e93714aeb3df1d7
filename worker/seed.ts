/** Creates the default simulated cluster under the data directory (first run, `sim reset`). */
import { buildHardware, defaultClusterConfig, type DefaultClusterOptions } from '../cluster/sim/cluster.js';
import { SimHardware } from '../cluster/sim/hardware.js';
import type { SimParams } from '../cluster/sim/state.js';
import { FileConfigStore } from '../cluster/store/config-store.js';

/** The demo runs simulated hardware 4× faster than real time (a 1 GiB instance migrates in ~8 s). */
export const DEMO_SIM: Partial<SimParams> = { timeFactor: 4 };

/**
 * The default cluster for the qemu backend: the same nodes and instances, with secondary IPs on the
 * loopback network (QEMU must listen on them for incoming migrations) and 256 MiB guests.
 */
export const QEMU_CLUSTER: DefaultClusterOptions = { secondaryNet: '127.0.1.', instanceMemory: 256 };

export async function seedDefaultCluster(home: string, sim: Partial<SimParams> = DEMO_SIM, options: DefaultClusterOptions = {}): Promise<void> {
  const config = FileConfigStore.forHome(home);
  await config.initialise(defaultClusterConfig(undefined, options));
  await SimHardware.forHome(home).replace(buildHardware(config.file.read(), sim));
}

/** Seeds on first run (the qemu variant for the qemu backend); returns whether it did. */
export async function ensureCluster(home: string, backend: 'sim' | 'qemu' = 'sim'): Promise<boolean> {
  if (FileConfigStore.forHome(home).exists() && SimHardware.forHome(home).exists()) return false;
  await seedDefaultCluster(home, DEMO_SIM, backend === 'qemu' ? QEMU_CLUSTER : {});
  return true;
}
