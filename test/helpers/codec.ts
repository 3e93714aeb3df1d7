/**
 * The payload key of this test process: the test servers' clients and the project's workers encrypt
 * with it, and every test cluster's home gets a copy (mode 0600), so that the CLI and worker processes
 * a test starts with GANETI_TEMPORAL_HOME=<cluster home> use the same key.
 */
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataConverter, Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';
import { AesGcmCodec, ensureKeyFile, KEY_FILE_NAME, keyFilePath, KeyRing, payloadDataConverter } from '../../connection/codec.js';

let file: string | undefined;
let ring: KeyRing | undefined;

/** This process's key file (created on first use, removed when the process exits). */
export function testKeyFile(): string {
  if (!file) {
    const dir = mkdtempSync(join(tmpdir(), 'ganeti-temporal-keys-'));
    file = join(dir, KEY_FILE_NAME);
    ensureKeyFile(file);
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return file;
}

export function testKeyRing(): KeyRing {
  return (ring ??= new KeyRing(testKeyFile()));
}

/** The data converter of the test servers' clients and workers. */
export function testDataConverter(): DataConverter {
  return payloadDataConverter(testKeyRing());
}

/** Copies this process's key into a cluster's data directory. */
export function installTestKey(home: string): void {
  copyFileSync(testKeyFile(), keyFilePath(home));
  chmodSync(keyFilePath(home), 0o600);
}

/** A payload as a program reads it: decrypted with the test key, then converted (JSON). */
export async function decodePayload(p: Payload): Promise<unknown> {
  const [plain] = await new AesGcmCodec(testKeyRing()).decode([p]);
  return defaultPayloadConverter.fromPayload(plain!);
}
