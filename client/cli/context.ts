/** What commands work on: the cluster configuration, the simulated hardware, the Temporal client. */
import type { Client } from '@temporalio/client';
import { SimHardware } from '../../adapters/sim/hardware.js';
import { FileConfigStore } from '../../adapters/store/config-store.js';
import type { ClusterConfig, Instance, Node } from '../../domain/types.js';
import {
  clusterDataConverter,
  connectClient,
  ConnectionSettingsError as SettingsError,
  homeDir,
  temporalSettings,
  type TemporalSettings,
} from '../../connection/settings.js';
import { PrereqFailedError } from '../api.js';
import { ConnectionError, ConnectionSettingsError, isRefusedCredentials, NoClusterError, UnreachableError } from './errors.js';

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

/** The Temporal connection settings; settings that cannot be used (a TLS file missing, …) are the environment's. */
export function settings(): TemporalSettings {
  try {
    return temporalSettings();
  } catch (e) {
    if (e instanceof SettingsError) throw e;
    throw new ConnectionSettingsError(`the Temporal connection settings cannot be used: ${(e as Error).message}`);
  }
}

/**
 * A connected client that encrypts payloads with the cluster's key; any failure to connect is the
 * environment's (unusable settings or key file, refused credentials, no server: exit 5).
 */
export async function client(): Promise<Client> {
  const s = settings();
  const dataConverter = clusterDataConverter(homeDir());
  try {
    return await connectClient(s, { dataConverter });
  } catch (e) {
    if (isRefusedCredentials(e)) {
      const cause = (e as Error & { cause?: Error }).cause?.message ?? (e as Error).message;
      throw new ConnectionError('Unauthenticated', `the Temporal server at ${s.address} refused the credentials: ${cause}`);
    }
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
