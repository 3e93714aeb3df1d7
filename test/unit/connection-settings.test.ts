/**
 * connection/settings.ts: Temporal's client configuration conventions (`@temporalio/envconfig`: the
 * TEMPORAL_* variables and the profiles of a TOML file, as the `temporal` CLI reads them), the
 * project's earlier variable names, and the errors of unusable settings.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ConnectionSettingsError, connectOptions, temporalSettings } from '../../connection/settings.js';

const dir = mkdtempSync(join(tmpdir(), 'settings-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const CA = file('ca.pem', 'CA PEM');
const CERT = file('client.pem', 'CERT PEM');
const KEY = file('client.key', 'KEY PEM');
/** No profile file of the machine's user: HOME points at an empty directory. */
const base = { HOME: dir };

describe('the standard variables', () => {
  test('nothing set: the embedded dev server on localhost:7233, namespace default, no TLS', () => {
    expect(temporalSettings(base)).toEqual({ address: 'localhost:7233', namespace: 'default', embedded: true });
    // An empty variable counts as unset (as before).
    expect(temporalSettings({ ...base, TEMPORAL_ADDRESS: '', TEMPORAL_NAMESPACE: '' }).embedded).toBe(true);
  });

  test('address, namespace, API key (TLS on), gRPC headers', () => {
    const s = temporalSettings({
      ...base,
      TEMPORAL_ADDRESS: 'temporal.example:7233',
      TEMPORAL_NAMESPACE: 'ganeti',
      TEMPORAL_API_KEY: 'k1',
      TEMPORAL_GRPC_META_X_TENANT: 'blue',
    });
    expect(s).toEqual({
      address: 'temporal.example:7233',
      namespace: 'ganeti',
      embedded: false,
      tls: true,
      apiKey: 'k1',
      metadata: { 'x-tenant': 'blue' },
    });
    expect(connectOptions(s)).toEqual({ address: 'temporal.example:7233', tls: true, apiKey: 'k1', metadata: { 'x-tenant': 'blue' } });
  });

  test('TLS: TEMPORAL_TLS=true uses the system roots; CA, client pair and server name from files', () => {
    expect(temporalSettings({ ...base, TEMPORAL_ADDRESS: 'a:1', TEMPORAL_TLS: 'true' }).tls).toEqual({});
    expect(temporalSettings({ ...base, TEMPORAL_ADDRESS: 'a:1', TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k' }).tls).toBe(false);
    const s = temporalSettings({
      ...base,
      TEMPORAL_ADDRESS: 'a:1',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: CA,
      TEMPORAL_TLS_CLIENT_CERT_PATH: CERT,
      TEMPORAL_TLS_CLIENT_KEY_PATH: KEY,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    expect(s.tls).toEqual({
      serverNameOverride: 'temporal.internal',
      serverRootCACertificate: Buffer.from('CA PEM'),
      clientCertPair: { crt: Buffer.from('CERT PEM'), key: Buffer.from('KEY PEM') },
    });
  });

  test("the project's earlier names TEMPORAL_TLS_CA / _CERT / _KEY still work; the standard name wins", () => {
    const s = temporalSettings({ ...base, TEMPORAL_ADDRESS: 'a:1', TEMPORAL_TLS_CA: CA, TEMPORAL_TLS_CERT: CERT, TEMPORAL_TLS_KEY: KEY });
    expect(s.tls).toEqual({
      serverRootCACertificate: Buffer.from('CA PEM'),
      clientCertPair: { crt: Buffer.from('CERT PEM'), key: Buffer.from('KEY PEM') },
    });
    const both = temporalSettings({ ...base, TEMPORAL_ADDRESS: 'a:1', TEMPORAL_TLS_CA: KEY, TEMPORAL_TLS_SERVER_CA_CERT_PATH: CA });
    expect(both.tls).toEqual({ serverRootCACertificate: Buffer.from('CA PEM') });
  });
});

describe('profiles', () => {
  const toml = file(
    'temporal.toml',
    [
      '[profile.default]',
      'address = "default.example:7233"',
      '',
      '[profile.prod]',
      'address = "prod.example:7233"',
      'namespace = "ganeti-prod"',
      'api_key = "prod-key"',
      '[profile.prod.tls]',
      `server_ca_cert_path = "${CA}"`,
      'server_name = "prod.internal"',
    ].join('\n'),
  );

  test('TEMPORAL_CONFIG_FILE and TEMPORAL_PROFILE select a profile; variables override it', () => {
    expect(temporalSettings({ ...base, TEMPORAL_CONFIG_FILE: toml })).toMatchObject({ address: 'default.example:7233', embedded: false });
    const prod = temporalSettings({ ...base, TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'prod' });
    expect(prod).toEqual({
      address: 'prod.example:7233',
      namespace: 'ganeti-prod',
      embedded: false,
      apiKey: 'prod-key',
      tls: { serverNameOverride: 'prod.internal', serverRootCACertificate: Buffer.from('CA PEM') },
    });
    expect(temporalSettings({ ...base, TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'prod', TEMPORAL_NAMESPACE: 'other' }).namespace).toBe(
      'other',
    );
  });

  test('the default file is ~/.config/temporalio/temporal.toml (XDG_CONFIG_HOME)', () => {
    const xdg = join(dir, 'xdg');
    mkdirSync(join(xdg, 'temporalio'), { recursive: true });
    writeFileSync(join(xdg, 'temporalio', 'temporal.toml'), '[profile.default]\nnamespace = "from-xdg"\n');
    expect(temporalSettings({ ...base, XDG_CONFIG_HOME: xdg })).toMatchObject({ namespace: 'from-xdg', embedded: true });
  });
});

describe('unusable settings are a ConnectionSettingsError', () => {
  test.each([
    [
      'an unknown profile',
      { TEMPORAL_CONFIG_FILE: file('p.toml', '[profile.default]\n'), TEMPORAL_PROFILE: 'nosuch' },
      /Profile 'nosuch' not found/,
    ],
    [
      'a malformed profile file',
      { TEMPORAL_CONFIG_FILE: file('bad.toml', '[profile.default\naddress = 1') },
      /cannot load the Temporal client profile/,
    ],
    ['a missing CA file', { TEMPORAL_ADDRESS: 'a:1', TEMPORAL_TLS_CA: join(dir, 'nosuch.pem') }, /cannot read a TLS file .*ENOENT/],
    ['a certificate without its key', { TEMPORAL_ADDRESS: 'a:1', TEMPORAL_TLS_CERT: CERT }, /a client certificate and its key go together/],
    ['a key without its certificate', { TEMPORAL_ADDRESS: 'a:1', TEMPORAL_TLS_CLIENT_KEY_PATH: KEY }, /go together/],
  ])('%s', (_what, env, message) => {
    expect(() => temporalSettings({ ...base, ...env })).toThrow(ConnectionSettingsError);
    expect(() => temporalSettings({ ...base, ...env })).toThrow(message);
  });
});
