/** `instance`: list, info, migrate (and cleanup), failover, start, shutdown, modify. */
import { Option, type Command } from 'commander';
import { SHUTDOWN_TIMEOUT_MAX_SEC } from '../../domain/limits.js';
import type { FailoverInput, MigrateInput } from '../../domain/ops.js';
import { MIGRATION_MODES, type MigrationMode } from '../../domain/types.js';
import { InstanceBusyError, runningOperation, startFailover, startMigration } from '../api.js';
import { instanceText, instanceView, table } from '../views.js';
import { client, configStore, instanceOrFail, readConfig } from './context.js';
import { confirm, wholeNumber } from './args.js';
import { addPolicyOptions, policyFromOptions } from './policy.js';
import { UsageError } from './errors.js';
import { runOperation } from './operations.js';
import { addPowerCommands } from './power.js';
import { print, printJson } from './output.js';

/** `-n`/`--target-node` (Ganeti's short option). */
const targetNodeOption = () => new Option('-n, --target-node <node>', 'target node (externally mirrored instances only)');

/**
 * Failover with --ignore-consistency can leave the instance running twice if its source still runs
 * it: Ganeti's convention is to ask, unless the source is marked offline (the operator said it is dead).
 */
async function confirmIgnoreConsistency(name: string, force: boolean | undefined): Promise<void> {
  const cfg = await readConfig();
  const source = cfg.instances[name]?.primaryNode;
  if (!source || cfg.nodes[source]?.offline) return; // an unknown instance is the workflow's to refuse
  await confirm(
    `Failover of ${name} with --ignore-consistency`,
    `Failover of instance ${name} with --ignore-consistency: its primary node ${source} is not marked offline. ` +
      `If ${name} still runs there, it may end up running on two nodes. Continue?`,
    force,
  );
}

export function addInstanceCommands(program: Command): void {
  const instance = program.command('instance').description('instance operations');
  instance
    .command('list')
    .description('list instances')
    .option('--json', 'print a JSON array')
    .action(async (o: { json?: boolean }) => {
      const cfg = await readConfig();
      const views = Object.values(cfg.instances)
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((i) => instanceView(cfg, i));
      if (o.json) {
        printJson(views);
        return;
      }
      print(
        table(
          ['Instance', 'Template', 'Primary', 'Secondary', 'Status'],
          views.map((v) => [v.name, v.diskTemplate, v.primaryNode, v.secondaryNodes.join(',') || '-', v.adminState]),
        ),
      );
    });
  instance
    .command('info <name>')
    .description('show an instance')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const cfg = await readConfig();
      const inst = instanceOrFail(cfg, name);
      if (o.json) printJson(instanceView(cfg, inst));
      else print(instanceText(cfg, inst));
    });
  addPolicyOptions(instance.command('migrate <name>'))
    .description('live-migrate an instance (or, with --cleanup, recover from a failed migration)')
    .option('--non-live', 'migrate non-live (pause, copy, resume)')
    .addOption(new Option('--migration-mode <mode>', 'migration mode').choices([...MIGRATION_MODES]))
    .addOption(new Option('--mode <mode>', 'alias of --migration-mode').choices([...MIGRATION_MODES]))
    .option('--cleanup', 'recover from a failed migration instead of migrating')
    .addOption(targetNodeOption())
    .option('--allow-failover', 'fall back to a failover if migration is impossible')
    .option('--ignore-ipolicy', "ignore the target group's instance policy")
    .option('--ignore-hvversions', 'ignore an unsafe hypervisor version pair')
    .option('--no-runtime-changes', 'do not balloon the instance memory to fit the target')
    .option('--reason <text>', 'why (recorded with the operation)')
    .option('--dry-run', 'check the prerequisites only, change nothing')
    .option('--submit', 'print the workflow ID and return at once')
    .option('--json', 'print the result (or error) as JSON')
    .action(async (name: string, o: Record<string, unknown>) => {
      if (o.migrationMode && o.mode && o.migrationMode !== o.mode) {
        throw new UsageError('--mode is an alias of --migration-mode: give one of them (or the same value)');
      }
      const migrationMode = (o.migrationMode ?? o.mode) as MigrationMode | undefined;
      if (o.nonLive && migrationMode) {
        throw new UsageError('Only one of the --non-live and --migration-mode options can be passed');
      }
      const input: MigrateInput = { instance: name };
      const mode = o.nonLive ? 'non-live' : migrationMode;
      if (mode) input.mode = mode;
      if (o.cleanup) input.cleanup = true;
      if (typeof o.targetNode === 'string') input.targetNode = o.targetNode;
      if (o.allowFailover) input.allowFailover = true;
      if (o.ignoreIpolicy) input.ignoreIpolicy = true;
      if (o.ignoreHvversions) input.ignoreHvversions = true;
      if (o.runtimeChanges === false) input.allowRuntimeChanges = false;
      if (typeof o.reason === 'string') input.reason = o.reason;
      if (o.dryRun) input.dryRun = true;
      const policy = policyFromOptions(o);
      if (policy) input.policy = policy;
      await runOperation(startMigration, input, { submit: !!o.submit, json: !!o.json });
    });
  instance
    .command('failover <name>')
    .description('fail an instance over to its secondary (shut down, swap the primary, start there if marked up)')
    .option('--ignore-consistency', 'proceed despite degraded disks on the target and a failed shutdown on the source')
    .option(
      '--shutdown-timeout <seconds>',
      `soft-shutdown time before the instance is killed (default 120, at most ${SHUTDOWN_TIMEOUT_MAX_SEC})`,
      wholeNumber('--shutdown-timeout', 0, SHUTDOWN_TIMEOUT_MAX_SEC),
    )
    .addOption(targetNodeOption())
    .option('--ignore-ipolicy', "ignore the target group's instance policy")
    .option('--reason <text>', 'why (recorded with the operation, passed to shutdown and start)')
    .option('--dry-run', 'check the prerequisites only, change nothing')
    .option('--submit', 'print the workflow ID and return at once')
    .option('-f, --force', 'do not ask for confirmation (--ignore-consistency with a source not marked offline)')
    .option('--json', 'print the result (or error) as JSON')
    .action(async (name: string, o: Record<string, unknown>) => {
      if (o.ignoreConsistency && !o.dryRun) await confirmIgnoreConsistency(name, o.force as boolean | undefined);
      const input: FailoverInput = { instance: name };
      if (o.ignoreConsistency) input.ignoreConsistency = true;
      if (typeof o.shutdownTimeout === 'number') input.shutdownTimeout = o.shutdownTimeout;
      if (typeof o.targetNode === 'string') input.targetNode = o.targetNode;
      if (o.ignoreIpolicy) input.ignoreIpolicy = true;
      if (typeof o.reason === 'string') input.reason = o.reason;
      if (o.dryRun) input.dryRun = true;
      await runOperation(startFailover, input, { submit: !!o.submit, json: !!o.json });
    });
  addPowerCommands(instance);
  instance
    .command('modify <name>')
    .description("change an instance's configuration (refused while an operation runs on it)")
    .addOption(new Option('--admin-state <state>', 'mark the instance up or down').choices(['up', 'down']).makeOptionMandatory())
    .option('--json', 'print the instance as JSON')
    .action(async (name: string, o: { adminState: 'up' | 'down'; json?: boolean }) => {
      instanceOrFail(await readConfig(), name);
      const running = await runningOperation(await client(), name);
      if (running) throw new InstanceBusyError(name, running);
      const inst = await (await configStore()).modifyInstance(name, { adminState: o.adminState });
      if (o.json) printJson(instanceView(await readConfig(), inst));
      else print(`Modified instance ${name}: admin_state -> ${inst.adminState}`);
    });
}
