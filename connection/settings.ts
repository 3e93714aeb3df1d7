/**
 * Where the Temporal server and the cluster state are. The connection follows Temporal's conventions
 * (`@temporalio/envconfig`, read the way the `temporal` CLI reads them): a profile of the TOML file
 * `$TEMPORAL_CONFIG_FILE` (default `~/.config/temporalio/temporal.toml`), chosen by `TEMPORAL_PROFILE`
 * (default `default`; a missing file is fine), overridden by the standard variables:
 *   TEMPORAL_ADDRESS       an existing server (host:port); none at all = the embedded dev server on localhost:7233
 *   TEMPORAL_NAMESPACE     default "default"
 *   TEMPORAL_API_KEY       API key (implies TLS)
 *   TEMPORAL_TLS           "true"/"1" for TLS (system roots unless a CA is given), "false"/"0" for none
 *   TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH   client certificate pair (mTLS)
 *   TEMPORAL_TLS_SERVER_CA_CERT_PATH   server root CA;  TEMPORAL_TLS_SERVER_NAME  SNI override
 *   (also the *_DATA forms, and TEMPORAL_GRPC_META_<NAME> gRPC headers)
 * The project's earlier names stay accepted: TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY, TEMPORAL_TLS_CA
 * (the standard name wins when both are set). An empty variable counts as unset.
 *   GANETI_TEMPORAL_HOME   state directory (default ./.data); holds the payload key file (codec.ts)
 *   GANETI_TEMPORAL_UI_URL the Web UI's base URL (default http://localhost:8233 for the embedded server)
 */
import { resolve } from 'node:path';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { loadClientConfigProfile, toClientOptions, type ClientConfigProfile } from '@temporalio/envconfig';
import { KeyRing, keyFilePath, payloadDataConverter } from './codec.js';

export interface TemporalSettings {
  address: string;
  namespace: string;
  /** No address configured: `npm start` runs the embedded dev server at `address`. */
  embedded: boolean;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  /** gRPC headers of every call (profile `grpc_meta`, TEMPORAL_GRPC_META_*). */
  metadata?: Record<string, string>;
}

/** The connection settings cannot be used: an unknown profile, an unreadable file, half a certificate pair … */
export class ConnectionSettingsError extends Error {
  override readonly name = 'ConnectionSettingsError';
}

export const DEFAULT_ADDRESS = 'localhost:7233';
export const DEFAULT_UI_PORT = 8233;

export function homeDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.GANETI_TEMPORAL_HOME || '.data');
}

/** The project's earlier TLS variable names and their standard equivalents. */
const LEGACY_TLS_VARS: Record<string, string> = {
  TEMPORAL_TLS_CERT: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
  TEMPORAL_TLS_KEY: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
  TEMPORAL_TLS_CA: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
};

/** The environment as envconfig should see it: empty TEMPORAL_* variables unset, the earlier names mapped. */
function standardEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    // (an empty TEMPORAL_GRPC_META_X removes that header, as envconfig defines)
    if (v === '' && k.startsWith('TEMPORAL_') && !k.startsWith('TEMPORAL_GRPC_META_')) continue;
    out[k] = v;
  }
  for (const [legacy, standard] of Object.entries(LEGACY_TLS_VARS)) {
    if (out[legacy] && !out[standard]) out[standard] = out[legacy];
  }
  return out;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

function loadProfile(vars: Record<string, string>): ClientConfigProfile {
  try {
    return loadClientConfigProfile({ overrideEnvVars: vars });
  } catch (e) {
    const file = vars.TEMPORAL_CONFIG_FILE ? ` (${vars.TEMPORAL_CONFIG_FILE})` : '';
    throw new ConnectionSettingsError(`cannot load the Temporal client profile${file}: ${message(e)}`);
  }
}

export function temporalSettings(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const profile = loadProfile(standardEnv(env));
  const t = profile.tls;
  if (t && !t.disabled && !t.clientCert !== !t.clientKey) {
    throw new ConnectionSettingsError(
      'a client certificate and its key go together: set both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH ' +
        '(or TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY), or neither',
    );
  }
  let options: ReturnType<typeof toClientOptions>;
  try {
    options = toClientOptions(profile);
  } catch (e) {
    throw new ConnectionSettingsError(`cannot read a TLS file of the Temporal connection settings: ${message(e)}`);
  }
  const c = options.connectionOptions;
  const s: TemporalSettings = {
    address: c.address || DEFAULT_ADDRESS,
    namespace: options.namespace || 'default',
    embedded: !c.address,
  };
  if (typeof c.tls === 'boolean') s.tls = c.tls;
  else if (c.tls) s.tls = withoutUndefined(c.tls);
  if (c.apiKey && typeof c.apiKey === 'string') s.apiKey = c.apiKey;
  if (c.metadata && Object.keys(c.metadata).length) s.metadata = c.metadata as Record<string, string>;
  return s;
}

/** envconfig's TLS settings without its unset fields, the file contents as Buffers (grpc-js requires them). */
function withoutUndefined(tls: TLSConfig): TLSConfig {
  const out: TLSConfig = {};
  if (tls.serverNameOverride) out.serverNameOverride = tls.serverNameOverride;
  if (tls.serverRootCACertificate) out.serverRootCACertificate = Buffer.from(tls.serverRootCACertificate);
  if (tls.clientCertPair) out.clientCertPair = { crt: Buffer.from(tls.clientCertPair.crt), key: Buffer.from(tls.clientCertPair.key) };
  return out;
}

/** Options for `Connection.connect` and `NativeConnection.connect` (same shape for both). */
export function connectOptions(s: TemporalSettings) {
  return {
    address: s.address,
    ...(s.tls !== undefined ? { tls: s.tls } : {}),
    ...(s.apiKey ? { apiKey: s.apiKey } : {}),
    ...(s.metadata ? { metadata: s.metadata } : {}),
  };
}

/** The payload codec of the cluster whose key file is under `home` (codec.ts). */
export function clusterDataConverter(home: string = homeDir()): DataConverter {
  return payloadDataConverter(new KeyRing(keyFilePath(home)));
}

export interface ConnectClientOptions {
  /** Default: the payload codec over `$GANETI_TEMPORAL_HOME/payload-keys.json`. */
  dataConverter?: DataConverter;
}

/** A client of the cluster's namespace that encrypts and decrypts payloads with the cluster's key. */
export async function connectClient(s: TemporalSettings = temporalSettings(), o: ConnectClientOptions = {}): Promise<Client> {
  const dataConverter = o.dataConverter ?? clusterDataConverter();
  const connection = await Connection.connect({ ...connectOptions(s), connectTimeout: '5s' });
  return new Client({ connection, namespace: s.namespace, dataConverter });
}

/** The Web UI page of a workflow, when the UI's address is known. */
export function webUiUrl(s: TemporalSettings, workflowId: string, runId?: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const base = env.GANETI_TEMPORAL_UI_URL || (s.embedded ? `http://localhost:${DEFAULT_UI_PORT}` : '');
  if (!base) return null;
  return `${base.replace(/\/$/, '')}/namespaces/${encodeURIComponent(s.namespace)}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${runId}` : ''}/history`;
}
