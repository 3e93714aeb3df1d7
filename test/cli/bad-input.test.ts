/**
 * Bad input is refused, and nothing changes (issue 10, "the trust boundary"): one table of forged or
 * mistaken inputs across the four ways into the system — the CLI as a process, the typed client
 * (client/api.ts), raw workflow starts through the SDK client, and raw node activity inputs (the
 * activities a node agent registers, called with forged arguments). For each: the typed error, the
 * documented exit code (CLI), and the configuration, the hardware state and the running workflows
 * exactly as before; raw node RPCs must not even reach the node's RPC log.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createNodeActivities } from '../../activities/index.js';
import {
  migrateInstance,
  OperationError,
  operationResult,
  startFailover,
  startMigration,
  startShutdown,
  startStartup,
  type MigrateInput,
  type StartupInput,
} from '../../client/api.js';
import { abortOperation, type WORKFLOW_TYPES } from '../../client/jobs.js';
import { rpcInstanceFor, type RpcInstance } from '../../domain/instance.js';
import { orchestratorQueue, workflowIdFor } from '../../domain/naming.js';
import type { NodeRpc } from '../../domain/ports.js';
import { qemuNode } from '../../worker/backends.js';
import { simBackend, simHooks, simHooksDir } from '../../worker/node-agent.js';
import { cli } from '../helpers/cli.js';
import { createTestCluster, type TestCluster } from '../helpers/cluster.js';
import { hardwareShape } from '../helpers/harness.js';
import { useServer, Workers } from '../helpers/temporal.js';

const server = useServer();
let c: TestCluster;
let w: Workers;
beforeAll(async () => {
  c = await createTestCluster();
  w = await new Workers(server.env(), c).all();
});
afterAll(async () => {
  await w?.stopAll();
  c?.remove();
});

/** What a refusal looked like: the error type (and Ganeti code), the exit code for the CLI, the message. */
interface Refusal {
  type: string;
  code?: string | undefined;
  exit?: number;
  message: string;
}

interface Case {
  name: string;
  kind: 'cli' | 'client' | 'workflow' | 'activity';
  /** Changes made before the "before" snapshot (and undone after the case). */
  setup?: () => Promise<void>;
  teardown?: () => Promise<void>;
  run: () => Promise<Refusal>;
  expect: { type: string; code?: string; exit?: number; message?: RegExp };
}

const LONG = 'x'.repeat(41);
const marker = () => join(c.home, 'pwned');
const env = () => ({ GANETI_TEMPORAL_HOME: c.home, TEMPORAL_ADDRESS: server.env().address, TEMPORAL_NAMESPACE: 'default' });

/** The CLI as a process, with --json: the printed error and the exit code. */
async function viaCli(args: string[], extraEnv: Record<string, string> = {}): Promise<Refusal> {
  const r = await cli([...args, '--json'], { ...env(), ...extraEnv });
  const err = (JSON.parse(r.stdout) as { error: { type: string; code?: string; message: string } }).error;
  return { type: err.type, code: err.code, exit: r.code, message: err.message };
}

/** A typed-client call or a raw start that must fail: its typed error. */
async function refused(p: () => Promise<unknown>): Promise<Refusal> {
  try {
    await p();
  } catch (e) {
    if (e instanceof OperationError) return { type: e.type, code: e.code, message: e.message };
    if (e instanceof WorkflowFailedError && e.cause instanceof ApplicationFailure) {
      return { type: e.cause.type ?? 'ApplicationFailure', message: e.cause.message };
    }
    throw e;
  }
  throw new Error('expected a refusal');
}

/** A workflow started by name with any ID and input, as `temporal workflow start` or the Web UI would. */
async function rawStart(workflow: (typeof WORKFLOW_TYPES)[number], workflowId: string, input: unknown) {
  const handle = await server.env().client.workflow.start(workflow, { taskQueue: orchestratorQueue(c.name), workflowId, args: [input] });
  const r = await refused(() => operationResult(handle));
  // Refused before anything ran: not a single activity was scheduled.
  const events = (await handle.fetchHistory()).events ?? [];
  expect(events.filter((e) => e.activityTaskScheduledEventAttributes)).toEqual([]);
  return r;
}

/** A node activity of a node agent, called directly with forged arguments. */
async function rawActivity(name: string, args: unknown[], rpc: NodeRpc = simBackend(c.home, 'node1')): Promise<Refusal> {
  const acts = createNodeActivities({ rpc, hooks: simHooks(c.home, 'node1') }) as unknown as Record<
    string,
    (...a: unknown[]) => Promise<unknown>
  >;
  try {
    await new MockActivityEnvironment().run(acts[name]!, ...args);
  } catch (e) {
    if (e instanceof ApplicationFailure) {
      expect(e.nonRetryable).toBe(true);
      return { type: e.type ?? 'ApplicationFailure', message: e.message };
    }
    throw e;
  }
  throw new Error(`expected ${name} to refuse its arguments`);
}

const inst = (edit: (i: RpcInstance) => void = () => undefined): RpcInstance => {
  const cfg = c.cfg();
  const i = rpcInstanceFor(cfg, cfg.instances.files1!, 'node1');
  edit(i);
  return i;
};
const hooksReq = (over: Record<string, unknown>) => ({ path: 'instance-migrate', phase: 'pre', env: {}, timeoutSec: 10, ...over });
const setNode = (node: string, change: { drained?: boolean; offline?: boolean }) => async () =>
  void (await c.config.modifyNode(node, change));

const usage = { type: 'UsageError', exit: 2 };
const wrongInput = { type: 'PrereqFailed', code: 'wrong_input', exit: 3 };
const prereq = { type: 'PrereqFailed', exit: 3 };
const invalidRpc = { type: 'InvalidRpcInput', message: /refused: invalid arguments/ };

const CASES: Case[] = [
  // ---- the CLI, as a process ------------------------------------------------------------------
  {
    name: 'empty instance name',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', '']),
    expect: { ...wrongInput, message: /must not be empty/ },
  },
  {
    name: 'over-long instance name',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', LONG]),
    expect: { ...wrongInput, message: /at most 40/ },
  },
  { name: '"../" in an instance name', kind: 'cli', run: () => viaCli(['instance', 'migrate', '../../etc']), expect: wrongInput },
  {
    name: 'shell metacharacters in a name',
    kind: 'cli',
    run: () => viaCli(['instance', 'failover', `$(touch ${marker()})`]),
    expect: wrongInput,
  },
  {
    name: '";" in a target node name',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'files1', '-n', 'node3;reboot']),
    expect: wrongInput,
  },
  {
    name: 'unknown instance',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'nosuch']),
    expect: { ...prereq, code: 'unknown_entity' },
  },
  {
    name: 'unknown target node',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'files1', '--target-node', 'node9']),
    expect: prereq,
  },
  { name: 'target = primary', kind: 'cli', run: () => viaCli(['instance', 'migrate', 'files1', '-n', 'node2']), expect: prereq },
  {
    name: 'drained target',
    kind: 'cli',
    setup: setNode('node3', { drained: true }),
    teardown: setNode('node3', { drained: false }),
    run: () => viaCli(['instance', 'migrate', 'files1', '--target-node', 'node3']),
    expect: prereq,
  },
  {
    name: 'offline target',
    kind: 'cli',
    setup: setNode('node3', { offline: true }),
    teardown: setNode('node3', { offline: false }),
    run: () => viaCli(['instance', 'failover', 'files1', '-n', 'node3']),
    expect: prereq,
  },
  {
    name: '--non-live together with a mode',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'web1', '--non-live', '--migration-mode', 'live']),
    expect: { ...usage, message: /Only one of the --non-live and --migration-mode options/ },
  },
  {
    name: '--mode and --migration-mode disagree',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'web1', '--mode', 'live', '--migration-mode', 'non-live']),
    expect: usage,
  },
  {
    name: 'unknown migration mode',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'web1', '--migration-mode', 'fast']),
    expect: { ...usage, message: /'fast' is invalid/ },
  },
  {
    name: 'huge --shutdown-timeout',
    kind: 'cli',
    run: () => viaCli(['instance', 'failover', 'web1', '--shutdown-timeout', '99999999999']),
    expect: usage,
  },
  {
    name: 'negative --shutdown-timeout',
    kind: 'cli',
    run: () => viaCli(['instance', 'failover', 'web1', '--shutdown-timeout', '-5']),
    expect: usage,
  },
  {
    name: 'fractional --shutdown-timeout',
    kind: 'cli',
    run: () => viaCli(['instance', 'failover', 'web1', '--shutdown-timeout', '1.5']),
    expect: usage,
  },
  {
    name: 'NaN --shutdown-timeout',
    kind: 'cli',
    run: () => viaCli(['instance', 'failover', 'web1', '--shutdown-timeout', 'NaN']),
    expect: usage,
  },
  {
    name: 'instance start: "../" in the name',
    kind: 'cli',
    run: () => viaCli(['instance', 'start', '../../etc']),
    expect: wrongInput,
  },
  {
    name: 'instance start: unknown instance',
    kind: 'cli',
    run: () => viaCli(['instance', 'start', 'nosuch']),
    expect: { ...prereq, code: 'unknown_entity' },
  },
  {
    name: 'instance shutdown: fractional --timeout',
    kind: 'cli',
    run: () => viaCli(['instance', 'shutdown', 'web1', '--timeout', '1.5']),
    expect: { ...usage, message: /--timeout must be a whole number/ },
  },
  {
    name: 'instance shutdown: huge --timeout',
    kind: 'cli',
    run: () => viaCli(['instance', 'stop', 'web1', '--timeout', '99999999999']),
    expect: usage,
  },
  {
    name: 'instance shutdown: over-long reason',
    kind: 'cli',
    run: () => viaCli(['instance', 'shutdown', 'web1', '--reason', 'x'.repeat(1001)]),
    expect: wrongInput,
  },
  {
    name: 'instance start: offline primary',
    kind: 'cli',
    setup: setNode('node3', { offline: true }),
    teardown: setNode('node3', { offline: false }),
    run: () => viaCli(['instance', 'startup', 'web3']),
    expect: { ...prereq, code: 'wrong_state', message: /Can't use offline node node3/ },
  },
  {
    name: 'instance start: unknown option',
    kind: 'cli',
    run: () => viaCli(['instance', 'start', 'web1', '--timeout', '5']),
    expect: { ...usage, message: /unknown option '--timeout'/ },
  },
  {
    name: 'instance migrate --bandwidth 2x',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'web1', '--bandwidth', '2x']),
    expect: { ...usage, message: /--bandwidth must be a whole number from 1 to 1048576, not 2x/ },
  },
  {
    name: 'instance migrate --on-timeout pause',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'web1', '--on-timeout', 'pause']),
    expect: { ...usage, message: /argument 'pause' is invalid/ },
  },
  {
    name: 'instance migrate --on-timeout postcopy --no-postcopy',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'web1', '--on-timeout', 'postcopy', '--no-postcopy']),
    expect: { ...usage, message: /--on-timeout postcopy needs post-copy to be allowed/ },
  },
  {
    name: 'node migrate --completion-timeout -1',
    kind: 'cli',
    run: () => viaCli(['node', 'migrate', 'node1', '--completion-timeout', '-1']),
    expect: usage,
  },
  {
    name: 'instance migrate --on-timeout postcopy without post-copy allowed anywhere',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'web1', '--on-timeout', 'postcopy']),
    expect: { ...wrongInput, message: /invalid migration policy: on timeout 'postcopy' needs post-copy to be allowed/ },
  },
  {
    // Not 'instance/nosuch': the refused `instance migrate nosuch` above leaves a finished run of that ID.
    name: 'job force-complete of an operation that does not exist',
    kind: 'cli',
    run: () => viaCli(['job', 'force-complete', 'instance/neverstarted']),
    expect: { type: 'NotFound', exit: 3, message: /no operation instance\/neverstarted/ },
  },
  { name: 'sim log --tail -5', kind: 'cli', run: () => viaCli(['sim', 'log', '--tail', '-5']), expect: usage },
  { name: 'sim set --sync-rate 2x', kind: 'cli', run: () => viaCli(['sim', 'set', '--sync-rate', '2x']), expect: usage },
  { name: 'sim set --time-factor 0', kind: 'cli', run: () => viaCli(['sim', 'set', '--time-factor', '0']), expect: usage },
  {
    name: 'sim set --guest-dirty-rate 1e999',
    kind: 'cli',
    run: () => viaCli(['sim', 'set', '--guest-dirty-rate', '1e999']),
    expect: usage,
  },
  {
    name: 'unknown RPC name in sim fault add',
    kind: 'cli',
    run: () => viaCli(['sim', 'fault', 'add', '--rpc', 'rm_rf', '--mode', 'permanent']),
    expect: usage,
  },
  {
    name: 'fractional --times in sim fault add',
    kind: 'cli',
    run: () => viaCli(['sim', 'fault', 'add', '--rpc', 'blockdev_open', '--mode', 'permanent', '--times', '2.5']),
    expect: usage,
  },
  { name: 'unknown node in sim power', kind: 'cli', run: () => viaCli(['sim', 'power', 'node9', 'off']), expect: prereq },
  {
    name: '"../" node in sim inject',
    kind: 'cli',
    run: () => viaCli(['sim', 'inject', 'web1', '--node', '../node1', '--state', 'running']),
    expect: prereq,
  },
  {
    name: '";" in a node name for node modify',
    kind: 'cli',
    run: () => viaCli(['node', 'modify', 'node1;reboot', '--drained', 'yes']),
    expect: prereq,
  },
  {
    name: 'over-long operation reason',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'web1', '--reason', 'x'.repeat(1001)]),
    expect: wrongInput,
  },
  {
    name: 'over-long abort reason',
    kind: 'cli',
    run: () => viaCli(['job', 'abort', 'web1', '--reason', 'x'.repeat(2000)]),
    expect: wrongInput,
  },
  {
    name: 'failover --ignore-consistency without a terminal and without -f',
    kind: 'cli',
    run: () => viaCli(['instance', 'failover', 'web1', '--ignore-consistency']),
    expect: { ...usage, message: /needs a confirmation: .*-f\/--force/ },
  },
  { name: 'sim reset without a terminal and without -f', kind: 'cli', run: () => viaCli(['sim', 'reset']), expect: usage },
  {
    name: 'unknown option (parser error, as JSON)',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'web1', '--frobnicate']),
    expect: { ...usage, message: /unknown option '--frobnicate'/ },
  },
  {
    name: 'TLS client certificate without its key',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'web1'], { TEMPORAL_TLS_CERT: join(c.home, 'nosuch.pem') }),
    expect: { type: 'ConnectionSettings', exit: 5 },
  },
  {
    name: 'TLS CA file that does not exist',
    kind: 'cli',
    run: () => viaCli(['instance', 'failover', 'web1'], { TEMPORAL_TLS_CA: join(c.home, 'nosuch-ca.pem') }),
    expect: { type: 'ConnectionSettings', exit: 5 },
  },
  {
    name: 'TLS against a server that does not speak it',
    kind: 'cli',
    run: () => viaCli(['instance', 'migrate', 'web1'], { TEMPORAL_TLS: 'true' }),
    expect: { type: 'Unreachable', exit: 5 },
  },

  // ---- the typed client -----------------------------------------------------------------------
  {
    name: 'live together with mode',
    kind: 'client',
    run: () => refused(() => startMigration(server.env().client, { instance: 'web1', live: true, mode: 'live' }, { cluster: c.name })),
    expect: { type: 'PrereqFailed', code: 'wrong_input', message: /Only one of the 'live' and 'mode' parameters/ },
  },
  {
    name: '"../" target node',
    kind: 'client',
    run: () => refused(() => startMigration(server.env().client, { instance: 'files1', targetNode: '../node2' }, { cluster: c.name })),
    expect: { type: 'PrereqFailed', code: 'wrong_input' },
  },
  {
    name: 'huge shutdown timeout',
    kind: 'client',
    run: () => refused(() => startFailover(server.env().client, { instance: 'web1', shutdownTimeout: 99999999999 }, { cluster: c.name })),
    expect: { type: 'PrereqFailed', code: 'wrong_input' },
  },
  {
    name: 'NaN shutdown timeout',
    kind: 'client',
    run: () => refused(() => startFailover(server.env().client, { instance: 'web1', shutdownTimeout: NaN }, { cluster: c.name })),
    expect: { type: 'PrereqFailed', code: 'wrong_input' },
  },
  {
    name: 'negative shutdown timeout',
    kind: 'client',
    run: () => refused(() => startFailover(server.env().client, { instance: 'web1', shutdownTimeout: -1 }, { cluster: c.name })),
    expect: { type: 'PrereqFailed', code: 'wrong_input' },
  },
  {
    name: 'unknown input key',
    kind: 'client',
    run: () => refused(() => startMigration(server.env().client, { instance: 'web1', hvparams: {} } as MigrateInput, { cluster: c.name })),
    expect: { type: 'PrereqFailed', code: 'wrong_input', message: /Unrecognized key/ },
  },
  {
    name: 'DRBD target = primary',
    kind: 'client',
    run: () => refused(() => migrateInstance(server.env().client, { instance: 'web1', targetNode: 'node1' }, { cluster: c.name })),
    expect: { type: 'PrereqFailed' },
  },
  {
    name: 'over-long abort reason',
    kind: 'client',
    run: () => refused(() => abortOperation(server.env().client, 'web1', 'x'.repeat(1001))),
    expect: { type: 'PrereqFailed', code: 'wrong_input', message: /reason: must be at most 1000/ },
  },

  {
    name: 'unknown input key to a start',
    kind: 'client',
    run: () => refused(() => startStartup(server.env().client, { instance: 'web1', timeout: 5 } as StartupInput, { cluster: c.name })),
    expect: { type: 'PrereqFailed', code: 'wrong_input', message: /Unrecognized key/ },
  },
  {
    name: 'negative shutdown --timeout',
    kind: 'client',
    run: () => refused(() => startShutdown(server.env().client, { instance: 'web1', timeout: -1 }, { cluster: c.name })),
    expect: { type: 'PrereqFailed', code: 'wrong_input' },
  },

  // ---- raw workflow starts through the SDK client --------------------------------------------
  {
    name: 'a wrong workflow ID (rogue-db1)',
    kind: 'workflow',
    run: () => rawStart('migrateInstanceWorkflow', 'rogue-db1', { instance: 'db1' }),
    expect: { type: 'WrongWorkflowId', message: /runs only as "instance\/db1"/ },
  },
  {
    name: "another instance's workflow ID",
    kind: 'workflow',
    run: () => rawStart('failoverInstanceWorkflow', workflowIdFor('web2'), { instance: 'web1' }),
    expect: { type: 'WrongWorkflowId' },
  },
  {
    name: 'a start under a wrong workflow ID',
    kind: 'workflow',
    run: () => rawStart('startInstanceWorkflow', 'start-web1', { instance: 'web1' }),
    expect: { type: 'WrongWorkflowId', message: /runs only as "instance\/web1"/ },
  },
  {
    name: "a shutdown under another instance's workflow ID",
    kind: 'workflow',
    run: () => rawStart('shutdownInstanceWorkflow', workflowIdFor('web2'), { instance: 'web1' }),
    expect: { type: 'WrongWorkflowId' },
  },
  {
    name: 'huge timeout in a raw shutdown',
    kind: 'workflow',
    run: () => rawStart('shutdownInstanceWorkflow', workflowIdFor('web1'), { instance: 'web1', timeout: 99999999999 }),
    expect: { type: 'PrereqFailed', code: 'wrong_input' },
  },
  {
    name: '"../" instance under its own ID',
    kind: 'workflow',
    run: () => rawStart('migrateInstanceWorkflow', workflowIdFor('../etc'), { instance: '../etc' }),
    expect: { type: 'PrereqFailed', code: 'wrong_input' },
  },
  {
    name: 'huge shutdown timeout in a raw start',
    kind: 'workflow',
    run: () => rawStart('failoverInstanceWorkflow', workflowIdFor('web1'), { instance: 'web1', shutdownTimeout: 99999999999 }),
    expect: { type: 'PrereqFailed', code: 'wrong_input' },
  },
  {
    name: 'over-long reason in a raw start',
    kind: 'workflow',
    run: () => rawStart('migrateInstanceWorkflow', workflowIdFor('web1'), { instance: 'web1', reason: 'x'.repeat(5000) }),
    expect: { type: 'PrereqFailed', code: 'wrong_input' },
  },

  // ---- raw node activity inputs --------------------------------------------------------------
  {
    name: 'forged hook phase (x/../../etc)',
    kind: 'activity',
    setup: async () => {
      // What the traversal would reach from node1's hooks directory: a script that leaves a mark.
      const dir = join(simHooksDir(c.home, 'node1'), '..', 'etc.d');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'evil'), `#!/bin/sh\ntouch ${marker()}\n`);
      chmodSync(join(dir, 'evil'), 0o755);
    },
    run: () => rawActivity('runHooks', [hooksReq({ phase: 'x/../../etc' })]),
    expect: { ...invalidRpc, message: /hooks_runner refused: invalid arguments: argument 0\.phase/ },
  },
  {
    name: 'forged hook path',
    kind: 'activity',
    run: () => rawActivity('runHooks', [hooksReq({ path: 'x/../../etc' })]),
    expect: invalidRpc,
  },
  {
    name: 'hook env key LD_PRELOAD',
    kind: 'activity',
    run: () => rawActivity('runHooks', [hooksReq({ env: { GANETI_X: '1', LD_PRELOAD: 'evil.so' } })]),
    expect: { ...invalidRpc, message: /GANETI_\[A-Z0-9_\]\+/ },
  },
  { name: 'NaN hook timeout', kind: 'activity', run: () => rawActivity('runHooks', [hooksReq({ timeoutSec: NaN })]), expect: invalidRpc },
  {
    name: '"../" instance name to instance_start',
    kind: 'activity',
    run: () => rawActivity('instanceStart', [inst((i) => (i.name = '../../etc/passwd')), '']),
    expect: { ...invalidRpc, message: /instance_start refused: invalid arguments: argument 0\.name/ },
  },
  {
    name: 'huge shutdown timeout to instance_shutdown',
    kind: 'activity',
    run: () => rawActivity('instanceShutdown', [inst(), 99999999999, '']),
    expect: invalidRpc,
  },
  {
    name: 'absolute disk path',
    kind: 'activity',
    run: () => rawActivity('blockdevOpen', [inst((i) => (i.disks[0]!.path = '/etc/shadow')), false]),
    expect: { ...invalidRpc, message: /disks\.0\.path/ },
  },
  {
    name: '"../" disk path',
    kind: 'activity',
    run: () => rawActivity('blockdevAssemble', [inst((i) => (i.disks[0]!.path = '../../x.img')), true]),
    expect: invalidRpc,
  },
  {
    name: 'negative balloon memory',
    kind: 'activity',
    run: () => rawActivity('instanceBalloonMemory', [inst(), -512]),
    expect: invalidRpc,
  },
  {
    name: 'forged migration target (bad IP, port out of range)',
    kind: 'activity',
    run: () => rawActivity('instanceMigrate', [inst(), { node: 'node2', ip: '10.0.0.1;rm', port: 70000 }, true]),
    expect: invalidRpc,
  },
  {
    name: 'zero poll interval',
    kind: 'activity',
    run: () => rawActivity('waitForMigration', [inst(), { pollMs: 0, progressMs: 1 }]),
    expect: invalidRpc,
  },
  { name: 'an extra argument', kind: 'activity', run: () => rawActivity('nodeInfo', ['--help']), expect: invalidRpc },
  {
    name: 'forged QEMU argument list in the migration info',
    kind: 'activity',
    run: () => {
      const i = inst();
      const info = {
        kind: 'qemu',
        name: i.name,
        uuid: i.uuid,
        memory: i.memory,
        deviceMemory: i.memory,
        vcpus: i.vcpus,
        hvparams: i.hvparams,
        disks: i.disks.length,
      };
      const forged = { ...info, args: ['-netdev', `tap,id=n0,script=/bin/sh -c 'touch ${marker()}'`] };
      const qemu = qemuNode({ home: c.home, node: 'node1', kernel: null, watchMs: 0 });
      return rawActivity('acceptInstance', [i, JSON.stringify(forged), c.cfg().nodes.node1!.secondaryIp], qemu).finally(() => qemu.close());
    },
    expect: { type: 'NodeRpcFailed', message: /refusing the migration information \(it carries a command line/ },
  },
];

async function runningWorkflows(): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of server.env().client.workflow.list({ query: 'ExecutionStatus = "Running"' }))
    ids.push(`${wf.workflowId}@${wf.runId}`);
  return ids.sort();
}

test('the table has at least 40 cases, over all four ways in', () => {
  expect(CASES.length).toBeGreaterThanOrEqual(40);
  expect(new Set(CASES.map((k) => k.kind))).toEqual(new Set(['cli', 'client', 'workflow', 'activity']));
  expect(new Set(CASES.map((k) => `${k.kind}: ${k.name}`)).size).toBe(CASES.length);
});

test.each(CASES.map((k) => [`${k.kind}: ${k.name}`, k] as const))('%s is refused and changes nothing', async (_name, k) => {
  await k.setup?.();
  try {
    const before = { config: c.cfg(), hardware: hardwareShape(c), log: c.state().log.length, running: await runningWorkflows() };
    const r = await k.run();
    expect({ type: r.type, ...(k.expect.code ? { code: r.code } : {}), ...(k.expect.exit !== undefined ? { exit: r.exit } : {}) }).toEqual({
      type: k.expect.type,
      ...(k.expect.code ? { code: k.expect.code } : {}),
      ...(k.expect.exit !== undefined ? { exit: k.expect.exit } : {}),
    });
    if (k.expect.message) expect(r.message).toMatch(k.expect.message);
    expect(r.message.length).toBeGreaterThan(10); // a message an operator can act on
    expect(c.cfg()).toEqual(before.config);
    expect(hardwareShape(c)).toEqual(before.hardware);
    expect(await runningWorkflows()).toEqual(before.running);
    // A refused node RPC does not even reach the node: its RPC log is as it was.
    if (k.kind === 'activity') expect(c.state().log.length).toBe(before.log);
    expect(existsSync(marker())).toBe(false);
  } finally {
    await k.teardown?.();
  }
});
