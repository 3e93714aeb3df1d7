/**
 * The payload codec (connection/codec.ts) and its key file, and the codec endpoint
 * (worker/codec-server.ts): encryption round trip, pass-through of plain payloads, key rotation by
 * id, the file's mode, and the remote codec protocol with its CORS rules.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { afterEach, describe, expect, test } from 'vitest';
import {
  addKey,
  AesGcmCodec,
  ensureKeyFile,
  KEY_ID_METADATA,
  KeyRing,
  PayloadKeyError,
  readKeyFile,
  removeKey,
  useKey,
} from '../../connection/codec.js';
import { startCodecServer, type CodecServer } from '../../worker/codec-server.js';

const dirs: string[] = [];
const servers: CodecServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function keyFile(): string {
  const d = mkdtempSync(join(tmpdir(), 'codec-test-'));
  dirs.push(d);
  return join(d, 'home', 'payload-keys.json');
}

const SECRET = { drbd: { port: 11000, secret: 'secret-11001' }, reason: 'node1 maintenance' };
const plain = (v: unknown = SECRET): Payload => defaultPayloadConverter.toPayload(v)!;
const text = (p: Payload) =>
  Buffer.from(p.data ?? []).toString('latin1') +
  Object.values(p.metadata ?? {})
    .map((b) => Buffer.from(b).toString('latin1'))
    .join('');
const meta = (p: Payload, k: string) => Buffer.from(p.metadata?.[k] ?? []).toString();

describe('the key file', () => {
  test('is created on first use with mode 0600 and one current key, and never overwritten', () => {
    const path = keyFile();
    const first = ensureKeyFile(path);
    expect(first.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect([...first.keys.keys.keys()]).toEqual([first.keys.current]);
    expect(first.keys.keys.get(first.keys.current)).toHaveLength(32);
    const again = ensureKeyFile(path);
    expect(again.created).toBe(false);
    expect(again.keys.current).toBe(first.keys.current);
    expect(readKeyFile(path).keys.get(first.keys.current)).toEqual(first.keys.keys.get(first.keys.current));
  });

  test('is refused when group or others may read it, and when it is missing or malformed', () => {
    const path = keyFile();
    ensureKeyFile(path);
    chmodSync(path, 0o644);
    expect(() => readKeyFile(path)).toThrow(PayloadKeyError);
    expect(() => readKeyFile(path)).toThrow(`mode 0644); it must be readable by its owner only: chmod 600 ${path}`);
    expect(() => new KeyRing(path)).toThrow(PayloadKeyError);
    chmodSync(path, 0o640);
    expect(() => readKeyFile(path)).toThrow(/mode 0640/);
    chmodSync(path, 0o600);
    expect(() => readKeyFile(path)).not.toThrow();
    expect(() => readKeyFile(`${path}.missing`)).toThrow(/no payload key file at .*payload-keys\.json\.missing/);
    writeFileSync(path, JSON.stringify({ current: 'a', keys: { a: 'c2hvcnQ=' } }), { mode: 0o600 });
    expect(() => readKeyFile(path)).toThrow(/key "a" must be 32 bytes/);
    writeFileSync(path, JSON.stringify({ current: 'b', keys: {} }), { mode: 0o600 });
    expect(() => readKeyFile(path)).toThrow(/the current key "b" is not in it/);
  });
});

describe('the AES-256-GCM codec', () => {
  test('encrypts the whole payload (metadata included) under the current key id and decrypts it', async () => {
    const path = keyFile();
    const { keys } = ensureKeyFile(path);
    const codec = new AesGcmCodec(new KeyRing(path));
    const [enc] = await codec.encode([plain()]);
    expect(meta(enc!, 'encoding')).toBe('binary/encrypted');
    expect(meta(enc!, KEY_ID_METADATA)).toBe(keys.current);
    expect(text(enc!)).not.toContain('secret-11001');
    expect(text(enc!)).not.toContain('json/plain');
    expect(text(enc!)).not.toContain(keys.keys.get(keys.current)!.toString('base64'));
    const [dec] = await codec.decode([enc!]);
    expect(defaultPayloadConverter.fromPayload(dec!)).toEqual(SECRET);
    // Each encoding draws a fresh IV.
    const [again] = await codec.encode([plain()]);
    expect(Buffer.from(again!.data!).equals(Buffer.from(enc!.data!))).toBe(false);
  });

  test('passes payloads without the encryption metadata through (histories recorded before encryption)', async () => {
    const path = keyFile();
    ensureKeyFile(path);
    const p = plain();
    const [out] = await new AesGcmCodec(new KeyRing(path)).decode([p]);
    expect(out).toBe(p);
  });

  test('refuses altered data and an unknown key id with a PayloadKeyError', async () => {
    const path = keyFile();
    ensureKeyFile(path);
    const codec = new AesGcmCodec(new KeyRing(path));
    const [enc] = await codec.encode([plain()]);
    const data = Buffer.from(enc!.data!);
    data[20] = data[20]! ^ 1;
    await expect(codec.decode([{ ...enc!, data }])).rejects.toThrow(/does not decrypt with key/);
    const other = { ...enc!, metadata: { ...enc!.metadata, [KEY_ID_METADATA]: Buffer.from('20000101-000000') } };
    await expect(codec.decode([other])).rejects.toThrow(/encrypted with key 20000101-000000, which is not in/);
  });

  test('keys rotate: decoding picks the key by id; a running codec sees the file change', async () => {
    const path = keyFile();
    const first = ensureKeyFile(path).keys.current;
    const codec = new AesGcmCodec(new KeyRing(path));
    const [old] = await codec.encode([plain('old')]);

    const second = addKey(path); // added, not current yet
    expect(readKeyFile(path).current).toBe(first);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const [stillOld] = await codec.encode([plain('still old')]);
    expect(meta(stillOld!, KEY_ID_METADATA)).toBe(first);

    useKey(path, second);
    const [fresh] = await codec.encode([plain('new')]);
    expect(meta(fresh!, KEY_ID_METADATA)).toBe(second);
    const decoded = await codec.decode([old!, fresh!]);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual(['old', 'new']);

    expect(() => removeKey(path, second)).toThrow(/is the current key/);
    removeKey(path, first);
    expect(JSON.parse(readFileSync(path, 'utf8')).keys).not.toHaveProperty(first);
    await expect(codec.decode([old!])).rejects.toThrow(`encrypted with key ${first}, which is not in ${path}`);
  });
});

describe('the codec endpoint', () => {
  const UI = 'http://localhost:18233';
  async function server(): Promise<{ s: CodecServer; codec: AesGcmCodec }> {
    const path = keyFile();
    ensureKeyFile(path);
    const codec = new AesGcmCodec(new KeyRing(path));
    const s = await startCodecServer({ codec, port: 0, allowedOrigins: [UI] });
    servers.push(s);
    return { s, codec };
  }
  const json = (p: Payload) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: Buffer.from(p.data ?? []).toString('base64'),
  });

  test('decodes and encodes payloads for the Web UI origin (CORS) and for clients without an origin', async () => {
    const { s, codec } = await server();
    const [enc] = await codec.encode([plain()]);
    const pre = await fetch(`${s.url}/decode`, {
      method: 'OPTIONS',
      headers: { origin: UI, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(UI);
    expect(pre.headers.get('access-control-allow-headers')).toBe('content-type,x-namespace');

    const res = await fetch(`${s.url}/default/decode`, {
      method: 'POST',
      headers: { origin: UI, 'content-type': 'application/json', 'x-namespace': 'default' },
      body: JSON.stringify({ payloads: [json(enc!), json(plain('as is'))] }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI);
    const out = (await res.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    expect(out.payloads.map((p) => JSON.parse(Buffer.from(p.data, 'base64').toString()))).toEqual([SECRET, 'as is']);
    expect(Buffer.from(out.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe('json/plain');

    const encoded = await fetch(`${s.url}/encode`, { method: 'POST', body: JSON.stringify({ payloads: [json(plain('x'))] }) });
    const back = ((await encoded.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> }).payloads[0]!;
    expect(Buffer.from(back.metadata.encoding!, 'base64').toString()).toBe('binary/encrypted');
    const [roundTrip] = await codec.decode([
      {
        metadata: Object.fromEntries(Object.entries(back.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
        data: Buffer.from(back.data, 'base64'),
      },
    ]);
    expect(defaultPayloadConverter.fromPayload(roundTrip!)).toBe('x');
  });

  test('refuses other origins, other paths and malformed bodies', async () => {
    const { s } = await server();
    const evil = await fetch(`${s.url}/decode`, { method: 'POST', headers: { origin: 'http://evil.example' }, body: '{"payloads":[]}' });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    expect((await fetch(`${s.url}/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } })).status).toBe(403);
    expect((await fetch(`${s.url}/other`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect((await fetch(`${s.url}/decode`)).status).toBe(404);
    expect((await fetch(`${s.url}/decode`, { method: 'POST', body: 'not json' })).status).toBe(400);
    expect((await fetch(`${s.url}/decode`, { method: 'POST', body: '{"payload": []}' })).status).toBe(400);
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});
