/**
 * The embedded Temporal dev server: `temporal server start-dev` from the resolved CLI, with a
 * persistent SQLite file under the data directory, gRPC on 7233, the Web UI on 8233 and the
 * project's search attributes registered.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTES } from '../workflows/messages.js';
import { PROJECT_ROOT, resolveTemporalCli } from './temporal-cli.js';

export interface DevServerOptions {
  home: string;
  port?: number;
  uiPort?: number;
  namespace?: string;
  log?: (msg: string) => void;
}

export async function startDevServer(o: DevServerOptions): Promise<TestWorkflowEnvironment> {
  const log = o.log ?? (() => undefined);
  const cli = await resolveTemporalCli({ log });
  if (cli) log(`Temporal CLI: ${cli.path} (${cli.source})`);
  else log('Temporal CLI not found locally; letting the SDK download it (needs internet access)');
  const dir = join(o.home, 'temporal');
  mkdirSync(dir, { recursive: true });
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: cli ? { type: 'existing-path', path: cli.path } : { type: 'cached-download', downloadDir: join(PROJECT_ROOT, '.tools') },
      ip: '127.0.0.1',
      port: o.port ?? 7233,
      uiPort: o.uiPort ?? 8233,
      dbFilename: join(dir, 'dev-server.db'),
      namespace: o.namespace ?? 'default',
      searchAttributes: SEARCH_ATTRIBUTES,
      log: { format: 'pretty', level: 'warn' },
    },
  });
}
