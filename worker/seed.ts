/** Creates the default simulated cluster under the data directory (first run, `sim reset`). */
import { buildHardware, defaultClusterConfig } from '../cluster/sim/cluster.js';
import { SimHardware } from '../cluster/sim/hardware.js';
import type { SimParams } from '../cluster/sim/state.js';
import { FileConfigStore } from '../cluster/store/config-store.js';

/** The demo runs simulated hardware 4× faster than real time (a 1 GiB instance migrates in ~8 s). */
export const DEMO_SIM: Partial<SimParams> = { timeFactor: 4 };

export async function seedDefaultCluster(home: string, sim: Partial<SimParams> = DEMO_SIM): Promise<void> {
  const config = FileConfigStore.forHome(home);
  await config.initialise(defaultClusterConfig());
  await SimHardware.forHome(home).replace(buildHardware(config.file.read(), sim));
}

/** Seeds on first run; returns whether it did. */
export async function ensureCluster(home: string): Promise<boolean> {
  if (FileConfigStore.forHome(home).exists() && SimHardware.forHome(home).exists()) return false;
  await seedDefaultCluster(home);
  return true;
}
