/** What commands work on: the cluster configuration, the simulated hardware, the Temporal client. */
import type { Client } from '@temporalio/client';
import { SimHardware } from '../../adapters/sim/hardware.js';
import { FileConfigStore } from '../../adapters/store/config-store.js';
import type { ClusterConfig, Instance, Node } from '../../domain/types.js';
import { connectClient, homeDir, temporalSettings } from '../../connection/settings.js';
import { PrereqFailedError } from '../api.js';
import { NoClusterError, UnreachableError } from './errors.js';

export function configStore(): FileConfigStore {
  const home = homeDir();
  const store = FileConfigStore.forHome(home);
  if (!store.exists()) {
    throw new NoClusterError(`no cluster configuration in ${home}: run "npm start" once or "ganeti-temporal sim reset"`);
  }
  return store;
}

export function readConfig(): ClusterConfig {
  return configStore().file.read();
}

export function hardware(): SimHardware {
  const hw = SimHardware.forHome(homeDir());
  if (!hw.exists()) throw new NoClusterError(`no simulated hardware in ${homeDir()}: run "ganeti-temporal sim reset"`);
  return hw;
}

/** A connected client; any failure to connect is the environment's. */
export async function client(): Promise<Client> {
  const s = temporalSettings();
  try {
    return await connectClient(s);
  } catch (e) {
    throw new UnreachableError(
      `cannot reach the Temporal server at ${s.address}: ${(e as Error).message}${s.embedded ? ' (is "npm start" running?)' : ''}`,
    );
  }
}

export function instanceOrFail(cfg: ClusterConfig, name: string): Instance {
  const inst = cfg.instances[name];
  if (!inst) throw new PrereqFailedError(`Instance '${name}' not known`);
  return inst;
}

export function nodeOrFail(cfg: ClusterConfig, name: string): Node {
  const n = cfg.nodes[name];
  if (!n) throw new PrereqFailedError(`Node '${name}' not known`);
  return n;
}
