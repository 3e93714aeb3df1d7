/**
 * Where the Temporal server and the cluster state are, from the environment:
 *   GANETI_TEMPORAL_HOME   state directory (default ./.data)
 *   TEMPORAL_ADDRESS       an existing server (host:port); unset = the embedded dev server on localhost:7233
 *   TEMPORAL_NAMESPACE     default "default"
 *   TEMPORAL_API_KEY       API key (implies TLS)
 *   TEMPORAL_TLS           "true" for TLS with the system roots
 *   TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY   client certificate pair (mTLS), file paths
 *   TEMPORAL_TLS_CA        server root CA, file path;  TEMPORAL_TLS_SERVER_NAME  SNI override
 *   GANETI_TEMPORAL_UI_URL the Web UI's base URL (default http://localhost:8233 for the embedded server)
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Client, Connection, type TLSConfig } from '@temporalio/client';

export interface TemporalSettings {
  address: string;
  namespace: string;
  /** No TEMPORAL_ADDRESS: `npm start` runs the embedded dev server at `address`. */
  embedded: boolean;
  tls?: TLSConfig | boolean;
  apiKey?: string;
}

export const DEFAULT_ADDRESS = 'localhost:7233';
export const DEFAULT_UI_PORT = 8233;

export function homeDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.GANETI_TEMPORAL_HOME || '.data');
}

export function temporalSettings(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const s: TemporalSettings = {
    address: env.TEMPORAL_ADDRESS || DEFAULT_ADDRESS,
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    embedded: !env.TEMPORAL_ADDRESS,
  };
  const tls: TLSConfig = {};
  if (env.TEMPORAL_TLS_CERT || env.TEMPORAL_TLS_KEY) {
    if (!env.TEMPORAL_TLS_CERT || !env.TEMPORAL_TLS_KEY) throw new Error('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together');
    tls.clientCertPair = { crt: readFileSync(env.TEMPORAL_TLS_CERT), key: readFileSync(env.TEMPORAL_TLS_KEY) };
  }
  if (env.TEMPORAL_TLS_CA) tls.serverRootCACertificate = readFileSync(env.TEMPORAL_TLS_CA);
  if (env.TEMPORAL_TLS_SERVER_NAME) tls.serverNameOverride = env.TEMPORAL_TLS_SERVER_NAME;
  if (Object.keys(tls).length) s.tls = tls;
  else if (env.TEMPORAL_TLS === 'true' || env.TEMPORAL_API_KEY) s.tls = true;
  if (env.TEMPORAL_API_KEY) s.apiKey = env.TEMPORAL_API_KEY;
  return s;
}

/** Options for `Connection.connect` and `NativeConnection.connect` (same shape for both). */
export function connectOptions(s: TemporalSettings) {
  return {
    address: s.address,
    ...(s.tls !== undefined ? { tls: s.tls } : {}),
    ...(s.apiKey ? { apiKey: s.apiKey } : {}),
  };
}

export async function connectClient(s: TemporalSettings = temporalSettings()): Promise<Client> {
  const connection = await Connection.connect({ ...connectOptions(s), connectTimeout: '5s' });
  return new Client({ connection, namespace: s.namespace });
}

/** The Web UI page of a workflow, when the UI's address is known. */
export function webUiUrl(s: TemporalSettings, workflowId: string, runId?: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const base = env.GANETI_TEMPORAL_UI_URL || (s.embedded ? `http://localhost:${DEFAULT_UI_PORT}` : '');
  if (!base) return null;
  return `${base.replace(/\/$/, '')}/namespaces/${encodeURIComponent(s.namespace)}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${runId}` : ''}/history`;
}
