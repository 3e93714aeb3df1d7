/** `node`: list, info, modify (offline / drained flags), migrate and failover (cli/node-ops.ts). */
import { Option, type Command } from 'commander';
import { nodeView, table } from '../views.js';
import { configStore, nodeOrFail, readConfig } from './context.js';
import { UsageError } from './errors.js';
import { addNodeOperationCommands } from './node-ops.js';
import { print, printJson } from './output.js';

export function addNodeCommands(program: Command): void {
  const node = program.command('node').description('node operations');
  node
    .command('list')
    .description('list nodes')
    .option('--json', 'print a JSON array')
    .action(async (o: { json?: boolean }) => {
      const cfg = await readConfig();
      const views = Object.values(cfg.nodes)
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((n) => nodeView(cfg, n));
      if (o.json) {
        printJson(views);
        return;
      }
      print(
        table(
          ['Node', 'Primary IP', 'Secondary IP', 'Memory', 'Pinst', 'Sinst', 'Flags'],
          views.map((v) => [
            v.name,
            v.primaryIp,
            v.secondaryIp,
            `${v.memoryTotal} MiB`,
            String(v.primaryInstances.length),
            String(v.secondaryInstances.length),
            [v.master ? 'master' : '', v.offline ? 'offline' : '', v.drained ? 'drained' : ''].filter(Boolean).join(',') || '-',
          ]),
        ),
      );
    });
  node
    .command('info <node>')
    .description('show a node')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const cfg = await readConfig();
      const v = nodeView(cfg, nodeOrFail(cfg, name));
      if (o.json) {
        printJson(v);
        return;
      }
      print(
        [
          `Node name: ${v.name}${v.master ? ' (master)' : ''}`,
          `  primary ip: ${v.primaryIp}`,
          `  secondary ip: ${v.secondaryIp}`,
          `  offline: ${v.offline}, drained: ${v.drained}, vm_capable: ${v.vmCapable}, group: ${v.group}`,
          `  memory: ${v.memoryTotal} MiB, hypervisor version: ${v.hvVersion}`,
          `  primary for instances: ${v.primaryInstances.join(', ') || '-'}`,
          `  secondary for instances: ${v.secondaryInstances.join(', ') || '-'}`,
          `  memory reserved: ${
            v.reservations.length
              ? v.reservations.map((r) => `${r.memory} MiB for ${r.instance} by ${r.workflowId} (run ${r.runId})`).join('; ')
              : '-'
          }`,
        ].join('\n'),
      );
    });
  node
    .command('modify <node>')
    .description('mark a node offline/online or drained/undrained')
    .addOption(new Option('--offline <yes|no>', 'offline: no RPC is ever sent to it').choices(['yes', 'no']))
    .addOption(new Option('--drained <yes|no>', 'drained: no instance is moved to it').choices(['yes', 'no']))
    .option('--json', 'print the node as JSON')
    .action(async (name: string, o: { offline?: 'yes' | 'no'; drained?: 'yes' | 'no'; json?: boolean }) => {
      if (o.offline === undefined && o.drained === undefined) throw new UsageError('nothing to change: give --offline and/or --drained');
      const change: { offline?: boolean; drained?: boolean } = {};
      if (o.offline) change.offline = o.offline === 'yes';
      if (o.drained) change.drained = o.drained === 'yes';
      // An unknown node (ConfigError not-found) exits 3, the master marked offline (invalid) exits 2.
      const n = await (await configStore()).modifyNode(name, change);
      if (o.json) printJson(nodeView(await readConfig(), n));
      else print(`Modified node ${name}: offline=${n.offline}, drained=${n.drained}`);
    });
  addNodeOperationCommands(node);
}
