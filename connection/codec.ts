/**
 * Payload encryption: an AES-256-GCM payload codec (Temporal's DataConverter `payloadCodecs`) over a
 * key file shared by every process of a cluster — the CLI, the typed client, the orchestrator and the
 * node agents — at `$GANETI_TEMPORAL_HOME/payload-keys.json`:
 *
 *   {"current": "<key id>", "keys": {"<key id>": "<32 bytes, base64>", ...}}
 *
 * The file must be readable by its owner only (mode 0600; a wider mode is refused). Each encrypted
 * payload names its key in the metadata (`encryption-key-id`), so keys rotate: encoding uses the
 * current key, decoding picks the key by id. A payload without the encryption metadata (recorded
 * before encryption, or written by a client without the codec) passes through decoding unchanged.
 * The file is re-read when it changes, so a running process picks up added keys and a new current
 * key without a restart.
 *
 * Encrypted payload: metadata `encoding: binary/encrypted`, `encryption-key-id: <id>`,
 * `encryption-cipher: AES256-GCM`; data = 12-byte IV ‖ ciphertext ‖ 16-byte tag of the serialised
 * original Payload (metadata included), with the key id as additional authenticated data.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import protos from '@temporalio/proto';

export const KEY_FILE_NAME = 'payload-keys.json';
export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const CIPHER_METADATA = 'encryption-cipher';
const CIPHER = 'AES256-GCM';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
/** The Payload protobuf message (a CommonJS module: default import under Node's ESM). */
const PayloadMessage = protos.temporal.api.common.v1.Payload;
const KEY_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** The key file is missing, unreadable, too widely readable or malformed, or a payload's key is not in it. */
export class PayloadKeyError extends Error {
  override readonly name = 'PayloadKeyError';
}

export const keyFilePath = (home: string): string => join(home, KEY_FILE_NAME);

interface KeyFileDoc {
  current: string;
  keys: Record<string, string>;
}

export interface KeySet {
  current: string;
  keys: ReadonlyMap<string, Buffer>;
}

const utf8 = (s: string) => Buffer.from(s, 'utf8');
const str = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

function checkMode(path: string, st: Stats): void {
  if (!st.isFile()) throw new PayloadKeyError(`the payload key file ${path} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new PayloadKeyError(
      `the payload key file ${path} is readable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); ` +
        `it must be readable by its owner only: chmod 600 ${path}`,
    );
  }
}

function parseDoc(path: string, text: string): KeySet {
  let doc: KeyFileDoc;
  try {
    doc = JSON.parse(text) as KeyFileDoc;
  } catch (e) {
    throw new PayloadKeyError(`the payload key file ${path} is not JSON: ${(e as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || typeof doc.keys !== 'object' || doc.keys === null || typeof doc.current !== 'string') {
    throw new PayloadKeyError(`the payload key file ${path} must hold {"current": "<id>", "keys": {"<id>": "<base64>"}}`);
  }
  const keys = new Map<string, Buffer>();
  for (const [id, b64] of Object.entries(doc.keys)) {
    const key = typeof b64 === 'string' ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
    if (!KEY_ID_RE.test(id) || key.length !== KEY_BYTES) {
      throw new PayloadKeyError(
        `the payload key file ${path}: key ${JSON.stringify(id)} must be ${KEY_BYTES} bytes in base64 under an id of [A-Za-z0-9._-]`,
      );
    }
    keys.set(id, key);
  }
  if (!keys.has(doc.current))
    throw new PayloadKeyError(`the payload key file ${path}: the current key ${JSON.stringify(doc.current)} is not in it`);
  return { current: doc.current, keys };
}

/** Reads a key file, refusing one that group or others may read. */
export function readKeyFile(path: string): KeySet {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new PayloadKeyError(
        `no payload key file at ${path}: the workers create it on their first start ("npm start"); ` +
          "on another machine, copy the cluster's key file there (mode 0600)",
      );
    }
    throw new PayloadKeyError(`cannot read the payload key file ${path}: ${(e as Error).message}`);
  }
  checkMode(path, st);
  try {
    return parseDoc(path, readFileSync(path, 'utf8'));
  } catch (e) {
    if (e instanceof PayloadKeyError) throw e;
    throw new PayloadKeyError(`cannot read the payload key file ${path}: ${(e as Error).message}`);
  }
}

function serialise(k: KeySet): string {
  const keys = Object.fromEntries([...k.keys].map(([id, key]) => [id, key.toString('base64')]));
  return `${JSON.stringify({ current: k.current, keys }, null, 2)}\n`;
}

/** Writes the key file atomically with mode 0600. */
function writeKeyFile(path: string, k: KeySet): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, serialise(k), { mode: 0o600, flag: 'wx' });
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** A fresh key id: the date and random hex, e.g. `20250130-3fa9c2`. */
export function newKeyId(now = new Date()): string {
  return `${now.toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(3).toString('hex')}`;
}

/** The key file, created with one fresh current key (mode 0600) if there is none. */
export function ensureKeyFile(path: string): { keys: KeySet; created: boolean } {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const id = newKeyId();
  const fresh: KeySet = { current: id, keys: new Map([[id, randomBytes(KEY_BYTES)]]) };
  try {
    // 'wx': never overwrite; a concurrent first start reads the winner's file.
    writeFileSync(path, serialise(fresh), { mode: 0o600, flag: 'wx' });
    return { keys: fresh, created: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new PayloadKeyError(`cannot create the payload key file ${path}: ${(e as Error).message}`);
    return { keys: readKeyFile(path), created: false };
  }
}

/** Adds a fresh key (current only with `makeCurrent`); returns its id. */
export function addKey(path: string, makeCurrent = false): string {
  const k = readKeyFile(path);
  const id = newKeyId();
  const keys = new Map(k.keys).set(id, randomBytes(KEY_BYTES));
  writeKeyFile(path, { current: makeCurrent ? id : k.current, keys });
  return id;
}

/** Makes a key that is in the file the current one (the one new payloads are encrypted with). */
export function useKey(path: string, id: string): void {
  const k = readKeyFile(path);
  if (!k.keys.has(id)) throw new PayloadKeyError(`no key ${id} in ${path}`);
  writeKeyFile(path, { current: id, keys: k.keys });
}

/** Removes a key that is not the current one: payloads encrypted with it can no longer be read. */
export function removeKey(path: string, id: string): void {
  const k = readKeyFile(path);
  if (!k.keys.has(id)) throw new PayloadKeyError(`no key ${id} in ${path}`);
  if (k.current === id) throw new PayloadKeyError(`key ${id} is the current key; make another one current first`);
  const keys = new Map(k.keys);
  keys.delete(id);
  writeKeyFile(path, { current: k.current, keys });
}

/** A key file, re-read whenever it changes on disk. */
export class KeyRing {
  private stamp = '';
  private set: KeySet | undefined;
  constructor(readonly path: string) {
    this.keys();
  }

  /** The keys as they are in the file now. */
  keys(): KeySet {
    let st: Stats;
    try {
      st = statSync(this.path);
    } catch {
      return readKeyFile(this.path); // throws the clear error
    }
    const stamp = `${st.ino}:${st.mtimeMs}:${st.size}:${st.mode}`;
    if (!this.set || stamp !== this.stamp) {
      this.set = readKeyFile(this.path);
      this.stamp = stamp;
    }
    return this.set;
  }
}

/** The AES-256-GCM payload codec over a key ring. */
export class AesGcmCodec implements PayloadCodec {
  constructor(private readonly ring: KeyRing) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const { current, keys } = this.ring.keys();
    const key = keys.get(current)!;
    return payloads.map((p) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(utf8(current));
      const plain = PayloadMessage.encode(p).finish();
      return {
        metadata: {
          encoding: utf8(ENCRYPTED_ENCODING),
          [KEY_ID_METADATA]: utf8(current),
          [CIPHER_METADATA]: utf8(CIPHER),
        },
        data: Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      if (str(p.metadata?.encoding) !== ENCRYPTED_ENCODING) return p;
      const id = str(p.metadata?.[KEY_ID_METADATA]);
      if (!id) throw new PayloadKeyError('an encrypted payload without a key id');
      const key = this.ring.keys().keys.get(id);
      if (!key) {
        throw new PayloadKeyError(
          `a payload is encrypted with key ${id}, which is not in ${this.ring.path}; copy the cluster's current key file there`,
        );
      }
      const data = Buffer.from(p.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadKeyError(`an encrypted payload (key ${id}) is truncated`);
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
        decipher.setAAD(utf8(id));
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
        return PayloadMessage.decode(plain);
      } catch {
        throw new PayloadKeyError(`an encrypted payload does not decrypt with key ${id} (a different key under that id, or altered data)`);
      }
    });
  }
}

/** The data converter every client and worker of the cluster uses. */
export function payloadDataConverter(ring: KeyRing): DataConverter {
  return { payloadCodecs: [new AesGcmCodec(ring)] };
}
