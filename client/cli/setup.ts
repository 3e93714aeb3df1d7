/** `setup`: register the project's search attributes on an existing Temporal cluster. */
import type { Command } from 'commander';
import protos from '@temporalio/proto';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../workflows/messages.js';
import { connectOptions, temporalSettings } from '../../connection/settings.js';
import { UnreachableError } from './errors.js';
import { print } from './output.js';

/** Adds the project's search attributes to the namespace (skipping those that exist). */
async function registerSearchAttributes(): Promise<string[]> {
  const s = temporalSettings();
  let connection;
  try {
    connection = await Connection.connect({ ...connectOptions(s), connectTimeout: '5s' });
  } catch (e) {
    throw new UnreachableError(`cannot reach the Temporal server at ${s.address}: ${(e as Error).message}`);
  }
  try {
    const existing = await connection.operatorService.listSearchAttributes({ namespace: s.namespace });
    const have = new Set(Object.keys(existing.customAttributes ?? {}));
    const types = protos.temporal.api.enums.v1.IndexedValueType;
    const missing = SEARCH_ATTRIBUTES.filter((k) => !have.has(k.name));
    if (missing.length) {
      await connection.operatorService.addSearchAttributes({
        namespace: s.namespace,
        searchAttributes: Object.fromEntries(
          missing.map((k) => [k.name, k.type === 'BOOL' ? types.INDEXED_VALUE_TYPE_BOOL : types.INDEXED_VALUE_TYPE_KEYWORD]),
        ),
      });
    }
    return missing.map((k) => k.name);
  } finally {
    await connection.close();
  }
}

export function addSetupCommand(program: Command): void {
  program
    .command('setup')
    .description('register the search attributes on an existing Temporal cluster (TEMPORAL_ADDRESS)')
    .action(async () => {
      const added = await registerSearchAttributes();
      print(added.length ? `registered search attributes: ${added.join(', ')}` : 'search attributes already registered');
    });
}
