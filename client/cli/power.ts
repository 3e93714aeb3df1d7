/** `instance start` and `instance shutdown` (Ganeti's `gnt-instance startup` / `shutdown`). */
import type { Command } from 'commander';
import { SHUTDOWN_TIMEOUT_MAX_SEC } from '../../domain/limits.js';
import type { ShutdownInput, StartupInput } from '../../domain/ops.js';
import { startShutdown, startStartup } from '../api.js';
import { wholeNumber } from './args.js';
import { runOperation } from './operations.js';

export function addPowerCommands(instance: Command): void {
  instance
    .command('start <name>')
    .alias('startup')
    .description('start an instance on its primary node (assemble its disks, start it, mark it up)')
    .option('--force', 'ignore disk assembly failures on secondary nodes')
    .option('--no-remember', 'do not record the instance as up in the configuration')
    .option('--reason <text>', 'why (recorded with the operation, passed to the start)')
    .option('--dry-run', 'check the prerequisites only, change nothing')
    .option('--submit', 'print the workflow ID and return at once')
    .option('--json', 'print the result (or error) as JSON')
    .action(async (name: string, o: Record<string, unknown>) => {
      const input: StartupInput = { instance: name };
      if (o.force) input.force = true;
      if (o.remember === false) input.noRemember = true;
      if (typeof o.reason === 'string') input.reason = o.reason;
      if (o.dryRun) input.dryRun = true;
      await runOperation(startStartup, input, { submit: !!o.submit, json: !!o.json });
    });
  instance
    .command('shutdown <name>')
    .alias('stop')
    .description('shut an instance down (soft, then forced after the timeout), deactivate its disks, mark it down')
    .option(
      '--timeout <seconds>',
      `soft-shutdown time before the instance is killed (default 120, at most ${SHUTDOWN_TIMEOUT_MAX_SEC})`,
      wholeNumber('--timeout', 0, SHUTDOWN_TIMEOUT_MAX_SEC),
    )
    .option('--no-remember', 'do not record the instance as down in the configuration')
    .option('--reason <text>', 'why (recorded with the operation, passed to the shutdown)')
    .option('--dry-run', 'check the prerequisites only, change nothing')
    .option('--submit', 'print the workflow ID and return at once')
    .option('--json', 'print the result (or error) as JSON')
    .action(async (name: string, o: Record<string, unknown>) => {
      const input: ShutdownInput = { instance: name };
      if (typeof o.timeout === 'number') input.timeout = o.timeout;
      if (o.remember === false) input.noRemember = true;
      if (typeof o.reason === 'string') input.reason = o.reason;
      if (o.dryRun) input.dryRun = true;
      await runOperation(startShutdown, input, { submit: !!o.submit, json: !!o.json });
    });
}
