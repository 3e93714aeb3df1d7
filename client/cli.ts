/**
 * `ganeti-temporal`, a Ganeti-shaped CLI (`npm run --silent cli -- <args>`).
 *
 * Exit codes: 0 success; 1 the operation failed while executing (or was cancelled/terminated);
 * 2 usage error; 3 prerequisites not met (nothing changed); 4 refused, the instance is busy;
 * 5 environment error (no cluster configuration, Temporal unreachable); 6 request refused (an abort
 * after the point of no return, or of a finished operation).
 */
import { Command, CommanderError, Option } from 'commander';
import protos from '@temporalio/proto';
import { Connection, type Client, type WorkflowHandle } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../workflows/messages.js';
import { formatOpError } from '../domain/errors.js';
import type { FailoverInput, MigrateInput, OperationResult } from '../domain/ops.js';
import { instanceHwStatus, inject, INJECT_STATES, setPower, type InjectState } from '../adapters/sim/cluster.js';
import { addFault, FAULT_MODES, type FaultMode } from '../adapters/sim/faults.js';
import { SimHardware } from '../adapters/sim/hardware.js';
import { setTimeFactor } from '../adapters/sim/state.js';
import { FileConfigStore } from '../adapters/store/config-store.js';
import type { ClusterConfig } from '../domain/types.js';
import { seedDefaultCluster } from '../adapters/sim/seed.js';
import {
  InstanceBusyError,
  OperationError,
  operationResult,
  PrereqFailedError,
  runningOperation,
  startFailover,
  startMigration,
  type StartOptions,
} from './api.js';
import { connectClient, connectOptions, homeDir, temporalSettings, webUiUrl } from '../connection/settings.js';
import { follow } from './follow.js';
import { abortOperation, AbortRefusedError, jobInfo, listJobs, toWorkflowId } from './jobs.js';
import { instanceText, instanceView, nodeView, table } from './views.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, prereq: 3, busy: 4, environment: 5, refused: 6 } as const;

class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly type = 'CliError',
  ) {
    super(message);
  }
}

const print = (s: string) => process.stdout.write(`${s}\n`);

function cliInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new CliError(`${flag} must be a whole number ≥ 0, not ${v}`, EXIT.usage, 'UsageError');
  return n;
}
const printJson = (v: unknown) => print(JSON.stringify(v, null, 2));

// ---- context ------------------------------------------------------------------------------------

function configStore(): FileConfigStore {
  const home = homeDir();
  const store = FileConfigStore.forHome(home);
  if (!store.exists()) {
    throw new CliError(
      `no cluster configuration in ${home}: run "npm start" once or "ganeti-temporal sim reset"`,
      EXIT.environment,
      'NoCluster',
    );
  }
  return store;
}

function readConfig(): ClusterConfig {
  return configStore().file.read();
}

function hardware(): SimHardware {
  const hw = SimHardware.forHome(homeDir());
  if (!hw.exists())
    throw new CliError(`no simulated hardware in ${homeDir()}: run "ganeti-temporal sim reset"`, EXIT.environment, 'NoCluster');
  return hw;
}

async function client(): Promise<Client> {
  const s = temporalSettings();
  try {
    return await connectClient(s);
  } catch (e) {
    throw new CliError(
      `cannot reach the Temporal server at ${s.address}: ${(e as Error).message}${s.embedded ? ' (is "npm start" running?)' : ''}`,
      EXIT.environment,
      'Unreachable',
    );
  }
}

function instanceOrFail(cfg: ClusterConfig, name: string) {
  const inst = cfg.instances[name];
  if (!inst) throw new CliError(`Instance '${name}' not known`, EXIT.prereq, 'PrereqFailed');
  return inst;
}

// ---- operations ---------------------------------------------------------------------------------

interface OpFlags {
  submit?: boolean;
  json?: boolean;
}

type Starter<I> = (c: Client, input: I, opts: StartOptions) => Promise<WorkflowHandle & { firstExecutionRunId: string }>;

/** Starts an operation, then either returns at once (--submit) or follows it to its end. */
async function runOperation<I>(start: Starter<I>, input: I, flags: OpFlags): Promise<void> {
  const cfg = readConfig();
  const c = await client();
  const handle = await start(c, input, { cluster: cfg.cluster.name, snapshot: cfg });
  const ui = webUiUrl(temporalSettings(), handle.workflowId, handle.firstExecutionRunId);
  if (flags.submit) {
    if (flags.json) printJson({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId, ...(ui ? { webUi: ui } : {}) });
    else print(`Submitted: workflow ${handle.workflowId} (run ${handle.firstExecutionRunId})${ui ? `\nWeb UI: ${ui}` : ''}`);
    return;
  }
  await followToEnd(handle, flags, ui);
}

/** Follows an operation to its end: feedback (and a progress bar on a TTY), then the result or error. */
async function followToEnd(handle: WorkflowHandle, flags: { json?: boolean }, ui: string | null): Promise<void> {
  if (!flags.json && ui) process.stderr.write(`Web UI: ${ui}\n`);
  const f = flags.json ? null : follow(handle, { bar: !!process.stdout.isTTY, write: print });
  try {
    const r = await operationResult(handle);
    if (f) {
      await f.stop();
      f.flush(r.feedback);
    }
    if (flags.json) printJson(resultJson(r));
  } catch (e) {
    if (f) {
      await f.stop();
      if (e instanceof OperationError) f.flush(e.feedback);
    }
    throw e;
  }
}

function resultJson(r: OperationResult) {
  return {
    outcome: r.outcome,
    instance: r.instance,
    sourceNode: r.sourceNode,
    targetNode: r.targetNode,
    feedback: r.feedback,
    ...(r.plan ? { plan: r.plan } : {}),
  };
}

// ---- program ------------------------------------------------------------------------------------

export function buildProgram(): Command {
  const program = new Command('ganeti-temporal')
    .description("Ganeti's instance migration, failover and cleanup as Temporal workflows")
    .showHelpAfterError()
    .exitOverride();

  const instance = program.command('instance').description('instance operations');
  instance
    .command('list')
    .description('list instances')
    .option('--json', 'print a JSON array')
    .action((o: { json?: boolean }) => {
      const cfg = readConfig();
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
    .action((name: string, o: { json?: boolean }) => {
      const cfg = readConfig();
      const inst = instanceOrFail(cfg, name);
      if (o.json) printJson(instanceView(cfg, inst));
      else print(instanceText(cfg, inst));
    });
  instance
    .command('migrate <name>')
    .description('live-migrate an instance (or, with --cleanup, recover from a failed migration)')
    .option('--non-live', 'migrate non-live (pause, copy, resume)')
    .addOption(new Option('--mode <mode>', 'migration mode').choices(['live', 'non-live']))
    .option('--cleanup', 'recover from a failed migration instead of migrating')
    .option('--target-node <node>', 'target node (externally mirrored instances only)')
    .option('--allow-failover', 'fall back to a failover if migration is impossible')
    .option('--ignore-ipolicy', "ignore the target group's instance policy")
    .option('--ignore-hvversions', 'ignore an unsafe hypervisor version pair')
    .option('--no-runtime-changes', 'do not balloon the instance memory to fit the target')
    .option('--reason <text>', 'why (recorded with the operation)')
    .option('--dry-run', 'check the prerequisites only, change nothing')
    .option('--submit', 'print the workflow ID and return at once')
    .option('--json', 'print the result (or error) as JSON')
    .action(async (name: string, o: Record<string, unknown>) => {
      if (o.nonLive && o.mode) {
        throw new CliError('Only one of the --non-live and --migration-mode options can be passed', EXIT.usage, 'UsageError');
      }
      const input: MigrateInput = { instance: name };
      const mode = o.nonLive ? 'non-live' : (o.mode as 'live' | 'non-live' | undefined);
      if (mode) input.mode = mode;
      if (o.cleanup) input.cleanup = true;
      if (typeof o.targetNode === 'string') input.targetNode = o.targetNode;
      if (o.allowFailover) input.allowFailover = true;
      if (o.ignoreIpolicy) input.ignoreIpolicy = true;
      if (o.ignoreHvversions) input.ignoreHvversions = true;
      if (o.runtimeChanges === false) input.allowRuntimeChanges = false;
      if (typeof o.reason === 'string') input.reason = o.reason;
      if (o.dryRun) input.dryRun = true;
      await runOperation(startMigration, input, { submit: !!o.submit, json: !!o.json });
    });
  instance
    .command('failover <name>')
    .description('fail an instance over to its secondary (shut down, swap the primary, start there if marked up)')
    .option('--ignore-consistency', 'proceed despite degraded disks on the target and a failed shutdown on the source')
    .option('--shutdown-timeout <seconds>', 'soft-shutdown time before the instance is killed (default 120)', (v) =>
      cliInt(v, '--shutdown-timeout'),
    )
    .option('--target-node <node>', 'target node (externally mirrored instances only)')
    .option('--ignore-ipolicy', "ignore the target group's instance policy")
    .option('--reason <text>', 'why (recorded with the operation, passed to shutdown and start)')
    .option('--dry-run', 'check the prerequisites only, change nothing')
    .option('--submit', 'print the workflow ID and return at once')
    .option('--json', 'print the result (or error) as JSON')
    .action(async (name: string, o: Record<string, unknown>) => {
      const input: FailoverInput = { instance: name };
      if (o.ignoreConsistency) input.ignoreConsistency = true;
      if (typeof o.shutdownTimeout === 'number') input.shutdownTimeout = o.shutdownTimeout;
      if (typeof o.targetNode === 'string') input.targetNode = o.targetNode;
      if (o.ignoreIpolicy) input.ignoreIpolicy = true;
      if (typeof o.reason === 'string') input.reason = o.reason;
      if (o.dryRun) input.dryRun = true;
      await runOperation(startFailover, input, { submit: !!o.submit, json: !!o.json });
    });
  instance
    .command('modify <name>')
    .description("change an instance's configuration (refused while an operation runs on it)")
    .addOption(new Option('--admin-state <state>', 'mark the instance up or down').choices(['up', 'down']).makeOptionMandatory())
    .option('--json', 'print the instance as JSON')
    .action(async (name: string, o: { adminState: 'up' | 'down'; json?: boolean }) => {
      instanceOrFail(readConfig(), name);
      const running = await runningOperation(await client(), name);
      if (running) throw new InstanceBusyError(name, running);
      const inst = await configStore().modifyInstance(name, { adminState: o.adminState });
      if (o.json) printJson(instanceView(readConfig(), inst));
      else print(`Modified instance ${name}: admin_state -> ${inst.adminState}`);
    });

  const node = program.command('node').description('node operations');
  node
    .command('list')
    .description('list nodes')
    .option('--json', 'print a JSON array')
    .action((o: { json?: boolean }) => {
      const cfg = readConfig();
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
    .action((name: string, o: { json?: boolean }) => {
      const cfg = readConfig();
      const n = cfg.nodes[name];
      if (!n) throw new CliError(`Node '${name}' not known`, EXIT.prereq, 'PrereqFailed');
      const v = nodeView(cfg, n);
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
      if (o.offline === undefined && o.drained === undefined)
        throw new CliError('nothing to change: give --offline and/or --drained', EXIT.usage, 'UsageError');
      const change: { offline?: boolean; drained?: boolean } = {};
      if (o.offline) change.offline = o.offline === 'yes';
      if (o.drained) change.drained = o.drained === 'yes';
      let n;
      try {
        n = await configStore().modifyNode(name, change);
      } catch (e) {
        const msg = (e as Error).message;
        throw new CliError(
          msg,
          msg.includes('not known') ? EXIT.prereq : EXIT.usage,
          msg.includes('not known') ? 'PrereqFailed' : 'UsageError',
        );
      }
      if (o.json) printJson(nodeView(readConfig(), n));
      else print(`Modified node ${name}: offline=${n.offline}, drained=${n.drained}`);
    });

  const job = program.command('job').description('operations as jobs: list, inspect, watch, abort');
  job
    .command('list')
    .description('migrations and failovers, newest first')
    .option('--running', 'only running ones')
    .option('--json', 'print a JSON array')
    .action(async (o: { running?: boolean; json?: boolean }) => {
      const jobs = await listJobs(await client(), { running: !!o.running });
      if (o.json) {
        printJson(jobs);
        return;
      }
      print(
        table(
          ['Workflow', 'Status', 'Operation', 'Nodes', 'Phase', 'Started'],
          jobs.map((j) => [
            j.workflowId,
            `${j.status}${j.needsOperator ? ' (needs operator)' : ''}`,
            j.operation ?? '-',
            j.sourceNode ? `${j.sourceNode} → ${j.targetNode ?? '?'}` : '-',
            j.phase ?? '-',
            j.startTime,
          ]),
        ),
      );
    });
  job
    .command('info <workflow-id>')
    .description('an operation: status, steps, feedback, live progress, result (an instance name works too)')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const j = await jobInfoOrFail(id);
      if (o.json) {
        printJson(j);
        return;
      }
      print(`Job ${j.workflowId} (run ${j.runId}): ${j.status}${j.summary ? ` — ${j.summary}` : ''}`);
      if (j.needsOperator) print(`  NEEDS AN OPERATOR: ${j.progress?.repair ?? 'see the failure'}`);
      if (j.progress) {
        print(
          `  phase: ${j.progress.phase}, ${j.progress.percent}% of the steps done${j.progress.pointOfNoReturn ? ', past the point of no return' : ''}`,
        );
        for (const s of j.progress.steps) print(`    [${s.state}] ${s.label}`);
      }
      for (const l of j.live) print(`  live: ${l.kind} on ${l.node}: ${l.percent === null ? '?' : l.percent.toFixed(2)} %`);
      if (j.failure) print(`  failure (${j.failure.type}): ${j.failure.message}`);
      if (j.progress) {
        print('  feedback:');
        for (const l of j.progress.feedback) print(`    ${l}`);
      }
    });
  job
    .command('watch <workflow-id>')
    .description('follow a running operation to its end (an instance name works too)')
    .option('--json', 'print the result (or error) as JSON at the end')
    .action(async (id: string, o: { json?: boolean }) => {
      const c = await client();
      const handle = c.workflow.getHandle(toWorkflowId(id));
      await handle.describe().catch(() => {
        throw new CliError(`no operation ${toWorkflowId(id)}`, EXIT.prereq, 'NotFound');
      });
      await followToEnd(handle, o, webUiUrl(temporalSettings(), handle.workflowId));
    });
  job
    .command('abort <workflow-id>')
    .description('abort an operation before its point of no return (abort + revert then run); says why if refused')
    .option('--reason <text>', 'why')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { reason?: string; json?: boolean }) => {
      const r = await abortOperation(await client(), toWorkflowId(id), o.reason);
      if (o.json) printJson(r);
      else print(`Abort accepted during ${r.phase}: ${r.message} (follow it with: ganeti-temporal job watch ${toWorkflowId(id)})`);
    });

  program
    .command('setup')
    .description('register the search attributes on an existing Temporal cluster (TEMPORAL_ADDRESS)')
    .action(async () => {
      const added = await registerSearchAttributes();
      print(added.length ? `registered search attributes: ${added.join(', ')}` : 'search attributes already registered');
    });

  const sim = program.command('sim').description('the simulated cluster (hardware truth, faults, breakage)');
  sim
    .command('reset')
    .description('recreate the default simulated cluster (configuration and hardware)')
    .action(async () => {
      await seedDefaultCluster(FileConfigStore.forHome(homeDir()), SimHardware.forHome(homeDir()));
      print(`default cluster created in ${homeDir()}`);
    });
  sim
    .command('status <instance>')
    .description("an instance's hardware truth: where it runs, DRBD roles and states")
    .option('--json', 'print JSON')
    .action((name: string, o: { json?: boolean }) => {
      const inst = instanceOrFail(readConfig(), name);
      const { state, now } = hardware().read();
      const st = instanceHwStatus(state, now, inst);
      if (o.json) {
        printJson(st);
        return;
      }
      print(`Instance ${st.instance} runs on: ${st.runningOn.join(', ') || '(nowhere)'}`);
      for (const d of st.disks) {
        print(`disk/${d.index}:`);
        for (const [node, s] of Object.entries(d.nodes)) {
          print(`  ${node}: ${s.role}, ${s.connection}, ${s.disk}${s.dualPrimary ? ', dual-primary' : ''}`);
        }
      }
    });
  sim
    .command('inject <instance>')
    .description('create a broken situation on purpose')
    .requiredOption('--node <node>', 'the node')
    .addOption(new Option('--state <state>', 'what to make true').choices([...INJECT_STATES]).makeOptionMandatory())
    .action(async (name: string, o: { node: string; state: InjectState }) => {
      const cfg = readConfig();
      const inst = instanceOrFail(cfg, name);
      if (!cfg.nodes[o.node]) throw new CliError(`Node '${o.node}' not known`, EXIT.prereq, 'PrereqFailed');
      try {
        await hardware().mutate((s, now) => inject(s, now, cfg, inst, o.node, o.state));
      } catch (e) {
        throw new CliError((e as Error).message, EXIT.usage, 'UsageError');
      }
      print(`${name} on ${o.node}: ${o.state}`);
    });
  sim
    .command('power <node> <state>')
    .description('power a simulated node off (everything on it stops, it answers nothing) or on')
    .action(async (name: string, state: string) => {
      if (state !== 'on' && state !== 'off') throw new CliError(`power state must be on or off, not ${state}`, EXIT.usage, 'UsageError');
      if (!readConfig().nodes[name]) throw new CliError(`Node '${name}' not known`, EXIT.prereq, 'PrereqFailed');
      await hardware().mutate((s, now) => setPower(s, now, name, state === 'on'));
      print(`${name} powered ${state}`);
    });
  sim
    .command('set')
    .description('change simulation parameters')
    .option('--time-factor <n>', 'simulated seconds per real second', parseFloat)
    .option('--sync-rate <MiBps>', 'DRBD resync rate', parseFloat)
    .option('--disk-write-rate <MiBps>', 'guest disk writes (out of sync while disconnected)', parseFloat)
    .option('--reconnect-resync <MiB>', 'resync after every reconnection', parseFloat)
    .option('--guest-dirty-rate <MiBps>', 'guest RAM dirtying rate (live migration)', parseFloat)
    .action(
      async (o: { timeFactor?: number; syncRate?: number; diskWriteRate?: number; reconnectResync?: number; guestDirtyRate?: number }) => {
        for (const [k, v] of Object.entries(o)) {
          if (!Number.isFinite(v) || (v as number) < 0 || (k === 'timeFactor' && (v as number) <= 0)) {
            throw new CliError(`invalid value for ${k}: ${String(v)}`, EXIT.usage, 'UsageError');
          }
        }
        const params = await hardware().mutate((s) => {
          if (o.timeFactor !== undefined) setTimeFactor(s, o.timeFactor);
          const { timeFactor: _t, ...rest } = o;
          Object.assign(s.params, rest);
          return s.params;
        });
        printJson(params);
      },
    );
  sim
    .command('log')
    .description('the node RPC log (newest last)')
    .option('--instance <name>', 'only RPCs about this instance')
    .option('--tail <n>', 'last N entries', (v) => parseInt(v, 10), 50)
    .option('--json', 'print JSON')
    .action((o: { instance?: string; tail: number; json?: boolean }) => {
      const log = hardware()
        .read()
        .state.log.filter((e) => !o.instance || e.instance === o.instance)
        .slice(-o.tail);
      if (o.json) {
        printJson(log);
        return;
      }
      for (const e of log) {
        print(
          `${new Date(e.at).toISOString()} ${e.node} ${e.rpc}${e.instance ? ` ${e.instance}` : ''}${e.detail ? ` (${e.detail})` : ''}: ${e.outcome}${e.error ? ` — ${e.error}` : ''}`,
        );
      }
    });

  const fault = sim.command('fault').description('fault injection, addressed by RPC name');
  fault
    .command('add')
    .description('make an RPC fail: transient (K times), permanent, hang, or hang-after (takes effect, never answers)')
    .requiredOption('--rpc <name>', 'Ganeti RPC name, e.g. drbd_attach_net')
    .option('--node <node>', 'only on this node')
    .addOption(new Option('--mode <mode>', 'fault mode').choices([...FAULT_MODES]).makeOptionMandatory())
    .option('--times <k>', 'how many times (default: 1 for transient, always otherwise)', (v) => parseInt(v, 10))
    .option('--skip <k>', 'let this many calls through first', (v) => parseInt(v, 10))
    .option('--json', 'print the fault as JSON')
    .action(async (o: { rpc: string; node?: string; mode: FaultMode; times?: number; skip?: number; json?: boolean }) => {
      for (const [k, v] of [
        ['times', o.times],
        ['skip', o.skip],
      ] as const) {
        if (v !== undefined && (!Number.isInteger(v) || v < 0))
          throw new CliError(`--${k} must be a whole number ≥ 0`, EXIT.usage, 'UsageError');
      }
      if (o.node && !readConfig().nodes[o.node]) throw new CliError(`Node '${o.node}' not known`, EXIT.prereq, 'PrereqFailed');
      const f = await hardware().mutate((s) => addFault(s, { rpc: o.rpc, node: o.node, mode: o.mode, times: o.times, skip: o.skip }));
      if (o.json) printJson(f);
      else print(`fault #${f.id}: ${f.mode} ${f.rpc}${f.node ? ` on ${f.node}` : ''}`);
    });
  fault
    .command('clear')
    .description('remove all faults')
    .action(async () => {
      await hardware().mutate((s) => void (s.faults = []));
      print('faults cleared');
    });
  fault
    .command('list')
    .description('list faults with their hit counts')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      const faults = hardware().read().state.faults;
      if (o.json) {
        printJson(faults);
        return;
      }
      print(
        table(
          ['Id', 'RPC', 'Node', 'Mode', 'Skip', 'Remaining', 'Hits'],
          faults.map((f) => [
            String(f.id),
            f.rpc,
            f.node ?? '*',
            f.mode,
            String(f.skip),
            f.remaining === null ? '∞' : String(f.remaining),
            String(f.hits),
          ]),
        ),
      );
    });
  return program;
}

async function jobInfoOrFail(id: string) {
  const c = await client();
  try {
    return await jobInfo(c, id);
  } catch (e) {
    if ((e as { name?: string }).name === 'WorkflowNotFoundError')
      throw new CliError(`no operation ${toWorkflowId(id)}`, EXIT.prereq, 'NotFound');
    throw e;
  }
}

/** Adds the project's search attributes to the namespace (skipping those that exist). */
async function registerSearchAttributes(): Promise<string[]> {
  const s = temporalSettings();
  let connection;
  try {
    connection = await Connection.connect({ ...connectOptions(s), connectTimeout: '5s' });
  } catch (e) {
    throw new CliError(`cannot reach the Temporal server at ${s.address}: ${(e as Error).message}`, EXIT.environment, 'Unreachable');
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

function exitCodeFor(e: unknown): { code: number; type: string; message: string; codeName?: string } {
  if (e instanceof CliError) return { code: e.code, type: e.type, message: e.message };
  if (e instanceof AbortRefusedError) return { code: EXIT.refused, type: e.type, message: e.message };
  if (e instanceof InstanceBusyError) return { code: EXIT.busy, type: e.type, message: e.message };
  if (e instanceof PrereqFailedError)
    return { code: EXIT.prereq, type: e.type, message: e.message, ...(e.code ? { codeName: e.code } : {}) };
  if (e instanceof OperationError) return { code: EXIT.failed, type: e.type, message: e.message };
  return { code: EXIT.failed, type: 'Error', message: e instanceof Error ? e.message : String(e) };
}

export async function main(argv = process.argv): Promise<number> {
  const program = buildProgram();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? EXIT.ok : EXIT.usage;
    }
    const r = exitCodeFor(e);
    if (json) printJson({ error: { type: r.type, message: r.message, ...(r.codeName ? { code: r.codeName } : {}) } });
    else process.stderr.write(`${formatOpError({ type: r.type, message: r.message, code: r.codeName })}\n`);
    return r.code;
  }
}

const isMain = process.argv[1] && /(?:^|[\\/])(?:cli\.ts|ganeti-temporal(?:\.mjs)?)$/.test(process.argv[1]);
if (isMain || process.env.GANETI_TEMPORAL_CLI_MAIN === '1') {
  void main().then((code) => process.exit(code));
}
