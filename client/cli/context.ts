/** What commands work on: the cluster configuration, the simulated hardware, the Temporal client. */
import type { Client } from '@temporalio/client';
import { SimHardware } from '../../adapters/sim/hardware.js';
import { openConfigStore } from '../../adapters/store/open.js';
import type { SqlConfigStore } from '../../adapters/store/sql-store.js';
import { orchestratorQueue } from '../../domain/naming.js';
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
import {
  ClusterBusyError,
  ConnectionError,
  ConnectionSettingsError,
  isRefusedCredentials,
  NoClusterError,
  UnreachableError,
} from './errors.js';

let opened: { key: string; store: SqlConfigStore } | undefined;

/** The configuration store (GANETI_TEMPORAL_DATABASE_URL, else the SQLite file in the data directory), empty or not. */
export function openStore(): SqlConfigStore {
  const home = homeDir();
  const key = `${home}\n${process.env.GANETI_TEMPORAL_DATABASE_URL ?? ''}`;
  if (opened?.key !== key) opened = { key, store: openConfigStore(home) };
  return opened.store;
}

/** The configuration store holding a configuration (else a NoClusterError, exit 5). */
export async function configStore(): Promise<SqlConfigStore> {
  const store = openStore();
  if (!(await store.exists())) {
    throw new NoClusterError(`no cluster configuration in ${store.location}: run "npm start" once or "ganeti-temporal sim reset"`);
  }
  return store;
}

export async function readConfig(): Promise<ClusterConfig> {
  return (await configStore()).config();
}

/**
 * Refuses (ClusterBusyError, exit 4) while operations run on the cluster: workflows on its orchestrator
 * queue (unknown if the server is down: a warning), and with `held`, also memory reservations or
 * evacuation slots in the configuration.
 */
export async function refuseWhileOperationsRun(cluster: string, what: string, held: string[] = []): Promise<void> {
  if (held.length) {
    throw new ClusterBusyError(
      `operations run on cluster ${cluster} (${held.sort().join(', ')}): wait for them or abort them before ${what}`,
    );
  }
  let c;
  try {
    c = await client();
  } catch (e) {
    if (!(e instanceof UnreachableError)) throw e;
    process.stderr.write(`warning: could not check for running operations (${e.message})\n`);
    return;
  }
  const running: string[] = [];
  const query = `ExecutionStatus = "Running" AND TaskQueue = "${orchestratorQueue(cluster)}"`;
  for await (const wf of c.workflow.list({ query })) running.push(wf.workflowId);
  if (running.length) {
    throw new ClusterBusyError(
      `operations run on cluster ${cluster} (${running.sort().join(', ')}): wait for them or abort them before ${what}`,
    );
  }
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
