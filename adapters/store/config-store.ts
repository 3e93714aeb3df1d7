/**
 * Configuration documents as JSON: the strict validation of a configuration that is to be stored
 * (imported, seeded, replaced), and `FileConfigStore`, the reader of a `config.json` written by the
 * JSON store of earlier versions (imported into the database on first start, adapters/store/open.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../../domain/ports.js';
import { ClusterConfigSchema, type ClusterConfig } from '../../domain/types.js';

export { ConfigError };

export const configPath = (home: string): string => join(home, 'config.json');

/**
 * Validates a configuration to be stored with ClusterConfigSchema. A field the schema does not know
 * is refused (ConfigError `invalid`), not silently dropped: the store keeps what the schema knows.
 */
export function parseConfig(raw: unknown): ClusterConfig {
  const r = ClusterConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`invalid cluster configuration:\n${z.prettifyError(r.error)}`, 'invalid');
  const unknown = unknownFields(raw, r.data, '');
  if (unknown.length) {
    throw new ConfigError(
      `the cluster configuration has fields this version does not know (they would be lost): ${unknown.slice(0, 20).join(', ')}${unknown.length > 20 ? ', …' : ''}`,
      'invalid',
    );
  }
  return r.data;
}

/** The paths of the object keys in `raw` that `parsed` (its validated form) does not have. */
function unknownFields(raw: unknown, parsed: unknown, path: string): string[] {
  if (Array.isArray(raw) && Array.isArray(parsed)) return raw.flatMap((v, i) => unknownFields(v, parsed[i], `${path}[${i}]`));
  if (!isObject(raw) || !isObject(parsed)) return [];
  return Object.keys(raw).flatMap((k) =>
    Object.hasOwn(parsed, k) ? unknownFields(raw[k], parsed[k], path ? `${path}.${k}` : k) : [path ? `${path}.${k}` : k],
  );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A configuration JSON file (the `config.json` of the JSON store, or a `config export`). */
export class FileConfigStore {
  constructor(readonly path: string) {}

  static forHome(home: string): FileConfigStore {
    return new FileConfigStore(configPath(home));
  }

  exists(): boolean {
    return existsSync(this.path);
  }

  /** The validated configuration (ConfigError `invalid` if it is not one this version can store). */
  read(): ClusterConfig {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code) throw e;
      throw new ConfigError(`${this.path} is not JSON: ${(e as Error).message}`, 'invalid');
    }
    return parseConfig(raw);
  }
}
