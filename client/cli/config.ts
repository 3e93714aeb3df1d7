/** `config`: export the cluster configuration as JSON, import one (replacing the stored configuration). */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseConfig } from '../../adapters/store/config-store.js';
import { homeDir } from '../../connection/settings.js';
import { ConfigError } from '../../domain/ports.js';
import { snapshotWithoutSecrets } from '../../domain/secrets.js';
import { configStore, openStore, refuseWhileOperationsRun } from './context.js';
import { ClusterBusyError, UsageError } from './errors.js';
import { print, printJson } from './output.js';

export function addConfigCommands(program: Command): void {
  const config = program.command('config').description('the cluster configuration as a JSON document (export, import)');
  config
    .command('export')
    .description('print the cluster configuration as JSON (without the DRBD secrets unless --include-secrets)')
    .option('--include-secrets', 'include the DRBD shared secrets (needed to import the document again)')
    .option('--json', 'print errors as JSON (the configuration is printed as JSON anyway)')
    .action(async (o: { includeSecrets?: boolean }) => {
      const { reservations: _r, leases: _l, ...snap } = await (await configStore()).config();
      printJson(o.includeSecrets ? snap : snapshotWithoutSecrets(snap));
    });
  config
    .command('import <file>')
    .description('replace the cluster configuration with a JSON document; refused while operations run; keeps a backup')
    .option('--json', 'print {file, serial, backup} (or the error) as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(file, 'utf8'));
      } catch (e) {
        throw new UsageError(`cannot read the configuration ${file}: ${(e as Error).message}`);
      }
      parseConfig(raw); // an invalid document is refused before anything else (exit 2)
      const store = openStore();
      if (await store.exists()) {
        const cfg = await store.config();
        const held = [
          ...Object.keys(cfg.reservations).map((id) => `reservation ${id}`),
          ...Object.keys(cfg.leases).map((id) => `slot ${id}`),
        ];
        await refuseWhileOperationsRun(cfg.cluster.name, 'importing a configuration', held);
      }
      let r;
      try {
        r = await store.importConfig(raw, homeDir());
      } catch (e) {
        // reservations or slots taken since the check above
        if (e instanceof ConfigError && e.kind === 'conflict') throw new ClusterBusyError(e.message);
        throw e;
      }
      if (o.json) printJson({ file, serial: r.config.serial, backup: r.backup });
      else {
        print(`configuration of cluster ${r.config.cluster.name} imported from ${file} (serial ${r.config.serial})`);
        if (r.backup) print(`the previous configuration is saved in ${r.backup}`);
      }
    });
}
