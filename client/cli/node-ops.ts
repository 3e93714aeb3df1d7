/**
 * `node migrate` and `node failover` (Ganeti's gnt-node migrate / failover): start the node
 * operation `node/<node>`, then return at once (--submit) or follow it — its own lines and every
 * child's feedback — to the end. Ends like Ganeti: "All instances migrated successfully." (exit 0),
 * or "There were N errors during the node migration." (exit 1).
 */
import { Option, type Command } from 'commander';
import type { WorkflowHandle } from '@temporalio/client';
import { temporalSettings, webUiUrl } from '../../connection/settings.js';
import { NameSchema, SHUTDOWN_TIMEOUT_MAX_SEC } from '../../domain/limits.js';
import { describeZodError } from '../../domain/ops.js';
import { primaryInstances, type LimitOverrides, type NodeFailoverInput, type NodeMigrateInput } from '../../domain/node-ops.js';
import { EVACUATION_LIMIT_MAX, MIGRATION_MODES, type ClusterConfig, type MigrationMode } from '../../domain/types.js';
import { OperationError, PrereqFailedError, type StartOptions } from '../api.js';
import { followNode } from '../follow-node.js';
import { nodeOperationResult, startNodeFailover, startNodeMigration } from '../node-api.js';
import { client, readConfig } from './context.js';
import { confirm, wholeNumber } from './args.js';
import { addPolicyOptions, policyFromOptions } from './policy.js';
import { UsageError } from './errors.js';
import { print, printJson } from './output.js';

const limitOptions = (cmd: Command): Command =>
  cmd
    .option(
      '--max-concurrent <n>',
      `at most this many instances at once (cluster default 5)`,
      wholeNumber('--max-concurrent', 1, EVACUATION_LIMIT_MAX),
    )
    .option(
      '--max-outgoing <n>',
      `at most this many leaving one node at once (cluster default 2)`,
      wholeNumber('--max-outgoing', 1, EVACUATION_LIMIT_MAX),
    )
    .option(
      '--max-incoming <n>',
      `at most this many arriving on one node at once (cluster default 2)`,
      wholeNumber('--max-incoming', 1, EVACUATION_LIMIT_MAX),
    );

function limitsOf(o: Record<string, unknown>): LimitOverrides {
  const l: LimitOverrides = {};
  if (typeof o.maxConcurrent === 'number') l.maxConcurrent = o.maxConcurrent;
  if (typeof o.maxOutgoing === 'number') l.maxOutgoing = o.maxOutgoing;
  if (typeof o.maxIncoming === 'number') l.maxIncoming = o.maxIncoming;
  return l;
}

/** The options both node operations share. */
function common(o: Record<string, unknown>) {
  return {
    ...(o.ignoreIpolicy ? { ignoreIpolicy: true } : {}),
    ...(o.dryRun ? { dryRun: true } : {}),
    ...(typeof o.reason === 'string' ? { reason: o.reason } : {}),
    ...(o.drain ? { drain: true } : {}),
    ...(o.stopOnFailure ? { stopOnFailure: true } : {}),
    limits: limitsOf(o),
  };
}

type Start<I> = (
  c: Awaited<ReturnType<typeof client>>,
  input: I,
  opts: StartOptions,
) => Promise<WorkflowHandle & { firstExecutionRunId: string }>;

/** The node, after its name passed the schema (a malformed name is wrong input, an unknown one an unknown entity). */
async function knownNode(name: string): Promise<ClusterConfig> {
  const parsed = NameSchema.safeParse(name);
  if (!parsed.success) throw new PrereqFailedError(`node: ${describeZodError(parsed.error)}`, 'wrong_input');
  const cfg = await readConfig();
  if (!cfg.nodes[name]) throw new PrereqFailedError(`Node '${name}' not known`, 'unknown_entity');
  return cfg;
}

async function run<I extends { node: string }>(start: Start<I>, input: I, o: Record<string, unknown>): Promise<void> {
  const cfg = await knownNode(input.node);
  if (primaryInstances(cfg, input.node).length === 0 && !o.drain) {
    if (o.json) printJson({ node: input.node, instances: [], errors: 0 });
    else print(`No primary instances on node ${input.node}, exiting.`);
    return;
  }
  const c = await client();
  const handle = await start(c, input, { cluster: cfg.cluster.name, snapshot: cfg });
  const ui = webUiUrl(temporalSettings(), handle.workflowId, handle.firstExecutionRunId);
  if (o.submit) {
    if (o.json) printJson({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId, ...(ui ? { webUi: ui } : {}) });
    else print(`Submitted: workflow ${handle.workflowId} (run ${handle.firstExecutionRunId})${ui ? `\nWeb UI: ${ui}` : ''}`);
    return;
  }
  await followNodeToEnd(handle, { json: !!o.json }, ui);
}

/** Follows a node operation to its end: its lines and its children's, then the result (or error). */
export async function followNodeToEnd(handle: WorkflowHandle, flags: { json?: boolean }, ui: string | null): Promise<void> {
  if (!flags.json && ui) process.stderr.write(`Web UI: ${ui}\n`);
  const f = flags.json ? null : followNode(handle, { bar: !!process.stdout.isTTY, write: print });
  try {
    const r = await nodeOperationResult(handle);
    if (f) {
      await f.stop();
      f.flush(r.feedback);
    }
    if (flags.json) printJson(r);
  } catch (e) {
    if (f) {
      await f.stop();
      if (e instanceof OperationError) f.flush(e.feedback);
    }
    throw e;
  }
}

export function addNodeOperationCommands(node: Command): void {
  limitOptions(
    addPolicyOptions(node.command('migrate <node>'))
      .description('live-migrate every primary instance off a node (each as its own operation instance/<name>)')
      .option('--non-live', 'migrate non-live (pause, copy, resume)')
      .addOption(new Option('--migration-mode <mode>', 'migration mode').choices([...MIGRATION_MODES]))
      .addOption(new Option('-n, --target-node <node>', 'target node of the externally mirrored instances (default: the allocator)'))
      .option('--allow-failover', 'fall back to a failover for instances that cannot migrate')
      .option('--ignore-ipolicy', "ignore the target group's instance policy")
      .option('--no-runtime-changes', 'do not balloon instance memory to fit a target')
      .option('--drain', 'mark the node drained first, so nothing new is placed on it')
      .option('--stop-on-failure', 'start no further instance once one failed'),
  )
    .option('--reason <text>', 'why (recorded with every instance operation)')
    .option('--dry-run', "check every instance's prerequisites only, move nothing")
    .option('--submit', 'print the workflow ID and return at once')
    .option('--json', 'print the result (or error) as JSON')
    .action(async (name: string, o: Record<string, unknown>) => {
      if (o.nonLive && o.migrationMode) throw new UsageError('Only one of the --non-live and --migration-mode options can be passed');
      const input: NodeMigrateInput = { node: name, ...common(o) };
      const mode = o.nonLive ? 'non-live' : (o.migrationMode as MigrationMode | undefined);
      if (mode) input.mode = mode;
      if (typeof o.targetNode === 'string') input.targetNode = o.targetNode;
      if (o.allowFailover) input.allowFailover = true;
      if (o.runtimeChanges === false) input.allowRuntimeChanges = false;
      const policy = policyFromOptions(o);
      if (policy) input.policy = policy;
      await run(startNodeMigration, input, o);
    });
  limitOptions(
    node
      .command('failover <node>')
      .description('fail over every primary instance of a (dead or offline) node to its secondary')
      .option('--ignore-consistency', 'proceed despite degraded disks on the targets and a failed shutdown on the node')
      .option(
        '--shutdown-timeout <seconds>',
        `soft-shutdown time before an instance is killed (default 120, at most ${SHUTDOWN_TIMEOUT_MAX_SEC})`,
        wholeNumber('--shutdown-timeout', 0, SHUTDOWN_TIMEOUT_MAX_SEC),
      )
      .option('--ignore-ipolicy', "ignore the target group's instance policy")
      .option('--drain', 'mark the node drained first, so nothing new is placed on it')
      .option('--stop-on-failure', 'start no further instance once one failed'),
  )
    .option('--reason <text>', 'why (recorded with every instance operation)')
    .option('--dry-run', "check every instance's prerequisites only, move nothing")
    .option('--submit', 'print the workflow ID and return at once')
    .option('-f, --force', 'do not ask for confirmation (--ignore-consistency with the node not marked offline)')
    .option('--json', 'print the result (or error) as JSON')
    .action(async (name: string, o: Record<string, unknown>) => {
      const cfg = await knownNode(name);
      const n = cfg.nodes[name]!;
      if (o.ignoreConsistency && !o.dryRun && !n.offline && primaryInstances(cfg, name).length > 0) {
        await confirm(
          `Failover of node ${name} with --ignore-consistency`,
          `Failover of the instances of node ${name} with --ignore-consistency: the node is not marked offline. ` +
            'Instances still running there may end up running on two nodes. Continue?',
          o.force as boolean | undefined,
        );
      }
      const input: NodeFailoverInput = { node: name, ...common(o) };
      if (o.ignoreConsistency) input.ignoreConsistency = true;
      if (typeof o.shutdownTimeout === 'number') input.shutdownTimeout = o.shutdownTimeout;
      await run(startNodeFailover, input, o);
    });
}
