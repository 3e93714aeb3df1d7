/**
 * Worker entry points.
 *   start          the whole stack in one process: embedded dev server (unless TEMPORAL_ADDRESS is
 *                  set), orchestrator, and a node agent per node of the simulated cluster
 *   orchestrator   the orchestrator worker only (production: one or more, anywhere)
 *   node-agent     one node's agent (production: one per hypervisor node, on that node)
 *   payload-key    list, add, switch or remove the payload encryption keys (connection/codec.ts)
 * Every worker encrypts payloads with the key file under GANETI_TEMPORAL_HOME; `start` and
 * `orchestrator` create it on their first start, a node agent needs the cluster's copy.
 */
import { Command, Option } from 'commander';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { DataConverter } from '@temporalio/common';
import { AesGcmCodec, ensureKeyFile, KeyRing, keyFilePath, payloadDataConverter } from '../connection/codec.js';
import { connectClient, connectOptions, DEFAULT_UI_PORT, homeDir, temporalSettings } from '../connection/settings.js';
import { configPath } from '../adapters/store/config-store.js';
import { importJsonOnFirstStart, openConfigStore } from '../adapters/store/open.js';
import type { SqlConfigStore } from '../adapters/store/sql-store.js';
import type { ClusterConfig } from '../domain/types.js';
import { workerWorkflowBundle } from './bundle.js';
import { startCodecServer, type CodecServer } from './codec-server.js';
import { startDevServer } from './dev-server.js';
import { addPayloadKeyCommands } from './payload-keys.js';
import { bootInstances, unusableSecondaryIps } from '../adapters/qemu/boot.js';
import { qemuNode, qemuNodeOptions } from './backends.js';
import { BACKENDS, createBackend, createNodeAgent, simHooks, simHooksDir, type Backend } from './node-agent.js';
import { createOrchestratorWorker } from './orchestrator.js';
import { installRuntime, type LogFormat } from './runtime.js';
import { DEMO_SIM, QEMU_CLUSTER } from '../adapters/sim/seed.js';
import { buildHardware, defaultClusterConfig, type DefaultClusterOptions } from '../adapters/sim/cluster.js';
import { SimHardware } from '../adapters/sim/hardware.js';
import { lockNodeAgent } from './agent-lock.js';
import { DEMO_HOST_ADDRESSES, demoNodes, startHostsDemo, type HostsDemo } from './hosts-demo.js';

const say = (msg: string) => console.log(`[ganeti-temporal] ${msg}`);

interface RuntimeFlags {
  logLevel: 'WARN' | 'INFO' | 'DEBUG';
  logFormat: LogFormat;
  metrics?: string;
}

function runtime(o: RuntimeFlags): void {
  installRuntime({ level: o.logLevel, format: o.logFormat, metrics: o.metrics });
  if (o.metrics) say(`Prometheus metrics on http://${o.metrics}/metrics`);
}

/** The configuration store; a `config.json` of the JSON store of earlier versions is imported into an empty one. */
async function openStore(home: string): Promise<SqlConfigStore> {
  const store = openConfigStore(home);
  const imported = await importJsonOnFirstStart(store, home);
  if (imported) say(`imported ${configPath(home)} into the configuration database ${store.location} (the file is kept as ${imported})`);
  return store;
}

async function clusterConfig(home: string): Promise<ClusterConfig> {
  const store = await openStore(home);
  if (!(await store.exists())) {
    throw new Error(`no cluster configuration in ${store.location}; run "npm start" once, or "ganeti-temporal sim reset"`);
  }
  return store.config();
}

const clusterName = async (home: string): Promise<string> => (await clusterConfig(home)).cluster.name;

/**
 * First start: seeds the default cluster into an empty configuration store, and builds simulated
 * hardware matching the configuration when there is none. Never overwrites a stored configuration.
 */
async function ensureStack(home: string, backend: Backend, seed: DefaultClusterOptions = {}): Promise<ClusterConfig> {
  const store = await openStore(home);
  if (await store.initialiseIfEmpty(defaultClusterConfig(undefined, { ...(backend === 'qemu' ? QEMU_CLUSTER : {}), ...seed }))) {
    say(`created the default ${backend === 'qemu' ? 'qemu' : 'simulated'} cluster in ${home}`);
  }
  const cfg = await store.config();
  const hw = SimHardware.forHome(home);
  if (!hw.exists()) {
    await hw.replace(buildHardware(cfg, DEMO_SIM));
    say(`created the simulated hardware of cluster ${cfg.cluster.name} in ${home}`);
  }
  return cfg;
}

/** The cluster's payload key ring; `create`: make the key file (mode 0600) if there is none. */
function payloadKeys(home: string, create: boolean): { ring: KeyRing; dataConverter: DataConverter } {
  const path = keyFilePath(home);
  if (create && ensureKeyFile(path).created) say(`created the payload encryption key file ${path} (mode 0600)`);
  const ring = new KeyRing(path);
  return { ring, dataConverter: payloadDataConverter(ring) };
}

/** The default port of the codec endpoint `npm start` serves (GANETI_TEMPORAL_CODEC_PORT). */
const DEFAULT_CODEC_PORT = 8234;

/** The origins whose pages may call the codec endpoint: the embedded Web UI's, and GANETI_TEMPORAL_UI_URL's. */
function uiOrigins(uiPort: number | null): string[] {
  const out = uiPort ? [`http://localhost:${uiPort}`, `http://127.0.0.1:${uiPort}`] : [];
  if (process.env.GANETI_TEMPORAL_UI_URL) out.push(new URL(process.env.GANETI_TEMPORAL_UI_URL).origin);
  return out;
}

async function runAll(workers: Worker[], onStopped?: () => Promise<void>): Promise<void> {
  try {
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    await onStopped?.();
  }
}

async function start(opts: RuntimeFlags & { backend: Backend; hosts: 'local' | 'netns' }): Promise<void> {
  const netns = opts.hosts === 'netns';
  const home = homeDir();
  // GANETI_TEMPORAL_DEV_PORT / GANETI_TEMPORAL_UI_PORT move the embedded server off 7233 / 8233.
  const devPort = Number(process.env.GANETI_TEMPORAL_DEV_PORT || 7233);
  const uiPort = Number(process.env.GANETI_TEMPORAL_UI_PORT || DEFAULT_UI_PORT);
  const configured = temporalSettings();
  const settings = configured.embedded ? { ...configured, address: `localhost:${devPort}` } : configured;
  if (netns && !configured.embedded) throw new Error('--hosts netns runs with the embedded dev server (unset TEMPORAL_ADDRESS)');
  const cfg = await ensureStack(home, opts.backend, netns ? DEMO_HOST_ADDRESSES : {});
  if (netns) demoNodes(cfg); // refused before anything starts
  if (opts.backend === 'qemu' && !netns) await prepareQemu(home, cfg);
  const { ring, dataConverter } = payloadKeys(home, true);
  runtime(opts);
  // The codec endpoint: always with the embedded Web UI; for another server's UI when asked for.
  let codec: CodecServer | undefined;
  if (settings.embedded || process.env.GANETI_TEMPORAL_CODEC_PORT) {
    const port = Number(process.env.GANETI_TEMPORAL_CODEC_PORT || DEFAULT_CODEC_PORT);
    try {
      codec = await startCodecServer({ codec: new AesGcmCodec(ring), port, allowedOrigins: uiOrigins(settings.embedded ? uiPort : null) });
    } catch (e) {
      throw new Error(
        `could not serve the codec endpoint on 127.0.0.1:${port} (${(e as Error).message}); GANETI_TEMPORAL_CODEC_PORT moves it`,
        {
          cause: e,
        },
      );
    }
  }
  let env: TestWorkflowEnvironment | undefined;
  if (settings.embedded) {
    say('starting the embedded Temporal dev server …');
    try {
      env = await startDevServer({ home, log: say, port: devPort, uiPort, ...(codec ? { codecEndpoint: codec.url } : {}) });
    } catch (e) {
      throw new Error(
        `could not start the dev server on ${settings.address} (${(e as Error).message}). If another server already ` +
          `runs there, use it with TEMPORAL_ADDRESS=${settings.address}`,
        { cause: e },
      );
    }
  }
  const connection = await NativeConnection.connect(connectOptions(settings));
  const client = await connectClient(settings, { dataConverter });
  const cluster = cfg.cluster.name;
  // One agent per node (worker/agent-lock.ts): this process runs them all (with hosts, each its own).
  const locks = netns ? [] : Object.keys(cfg.nodes).map((node) => lockNodeAgent(home, node));
  const bundle = await workerWorkflowBundle();
  const workers = [
    await createOrchestratorWorker({
      connection,
      namespace: settings.namespace,
      cluster,
      home,
      client,
      workflowBundle: bundle,
      dataConverter,
    }),
  ];
  let demo: HostsDemo | undefined;
  if (netns) demo = await startHostsDemo({ cfg, backend: opts.backend, home, devPort, say });
  for (const node of netns ? [] : Object.keys(cfg.nodes).sort()) {
    workers.push(
      await createNodeAgent({
        connection,
        namespace: settings.namespace,
        cluster,
        node,
        rpc: createBackend(opts.backend, { home, node }),
        hooks: simHooks(home, node),
        dataConverter,
      }),
    );
  }
  say(
    `cluster ${cluster}: orchestrator + node agents for ${Object.keys(cfg.nodes).sort().join(', ')} (backend: ${opts.backend}${netns ? ', each agent in its host' : ''})`,
  );
  if (settings.embedded) say(`Temporal Web UI: http://localhost:${uiPort}/namespaces/${settings.namespace}/workflows`);
  if (codec) say(`codec endpoint: ${codec.url} (payloads are encrypted; the Web UI decodes them through it)`);
  say(`Temporal server: ${settings.address}, namespace ${settings.namespace}`);
  say('try: npm run --silent cli -- instance list      (Ctrl-C stops everything)');
  await runAll(workers, async () => {
    await demo?.stop();
    locks.forEach((l) => l.release());
    await connection.close();
    await env?.teardown();
    await codec?.close();
  });
}

/** qemu backend: boots the instances marked up (re-attaching running ones) before the agents start. */
async function prepareQemu(home: string, cfg: ClusterConfig): Promise<void> {
  const bad = await unusableSecondaryIps(cfg);
  if (bad.length) {
    say(
      `warning: QEMU cannot listen on these secondary IPs (${bad.join(', ')}): migrations will fail; start with a fresh GANETI_TEMPORAL_HOME to get the loopback cluster`,
    );
  }
  const r = await bootInstances(cfg, (node) => qemuNode({ ...qemuNodeOptions({ home, node }), watchMs: 0 }));
  say(
    `qemu: ${r.started.length} instance(s) started${r.started.length ? ` (${r.started.join(', ')})` : ''}, ${r.running.length} re-attached`,
  );
  for (const f of r.failed) say(`qemu: could not start ${f.instance}: ${f.error}`);
  say(`qemu: processes, monitors and logs under ${home}/qemu/<node>/; they keep running when this process stops`);
}

/** `qemu-boot --node <n>` (internal, run by --hosts netns inside the node's host): boots the node's instances marked up. */
async function qemuBoot(opts: { node: string }): Promise<void> {
  const home = homeDir();
  const cfg = await clusterConfig(home);
  const own = { ...cfg, instances: Object.fromEntries(Object.entries(cfg.instances).filter(([, i]) => i.primaryNode === opts.node)) };
  const r = await bootInstances(own, (node) => qemuNode({ ...qemuNodeOptions({ home, node }), watchMs: 0 }));
  say(`qemu on ${opts.node}: ${r.started.length} instance(s) started, ${r.running.length} re-attached`);
  for (const f of r.failed) say(`qemu on ${opts.node}: could not start ${f.instance}: ${f.error}`);
}

async function orchestrator(opts: RuntimeFlags): Promise<void> {
  const home = homeDir();
  const settings = temporalSettings();
  const { dataConverter } = payloadKeys(home, true);
  runtime(opts);
  const connection = await NativeConnection.connect(connectOptions(settings));
  const client = await connectClient(settings, { dataConverter });
  const cluster = await clusterName(home);
  const w = await createOrchestratorWorker({
    connection,
    namespace: settings.namespace,
    cluster,
    home,
    client,
    workflowBundle: await workerWorkflowBundle(),
    dataConverter,
  });
  say(`orchestrator for cluster ${cluster} on ${settings.address}`);
  await runAll([w], () => connection.close());
}

async function nodeAgent(opts: RuntimeFlags & { node: string; backend: Backend; cluster?: string; hooksDir?: string }): Promise<void> {
  const home = homeDir();
  const settings = temporalSettings();
  const cfg = await clusterConfig(home);
  if (!cfg.nodes[opts.node]) {
    throw new Error(
      `node ${JSON.stringify(opts.node)} is not in the configuration of cluster ${cfg.cluster.name} (${home}); ` +
        `its nodes: ${Object.keys(cfg.nodes).sort().join(', ')}`,
    );
  }
  // One agent per node: a second one for the same node refuses to start (worker/agent-lock.ts).
  const lock = lockNodeAgent(home, opts.node);
  const { dataConverter } = payloadKeys(home, false);
  runtime(opts);
  const cluster = opts.cluster ?? cfg.cluster.name;
  const connection = await NativeConnection.connect(connectOptions(settings));
  const hooksDir = opts.hooksDir ?? simHooksDir(home, opts.node);
  const w = await createNodeAgent({
    connection,
    namespace: settings.namespace,
    cluster,
    node: opts.node,
    rpc: createBackend(opts.backend, { home, node: opts.node }),
    hooks: simHooks(home, opts.node, hooksDir),
    dataConverter,
  });
  say(`node agent for ${opts.node} (${opts.backend}) in cluster ${cluster} on ${settings.address}; hooks from ${hooksDir}`);
  await runAll([w], async () => {
    lock.release();
    await connection.close();
  });
}

const env = process.env;
const logOptions = (cmd: Command): Command =>
  cmd
    .addOption(
      new Option('--log-level <level>', 'worker log level')
        .choices(['WARN', 'INFO', 'DEBUG'])
        .default(env.GANETI_TEMPORAL_LOG_LEVEL ?? 'WARN'),
    )
    .addOption(
      new Option('--log-format <format>', 'text, or json (one object per line)')
        .choices(['text', 'json'])
        .default(env.GANETI_TEMPORAL_LOG_FORMAT ?? 'text'),
    )
    .addOption(
      new Option('--metrics <host:port>', 'serve Prometheus metrics there (/metrics)').default(env.GANETI_TEMPORAL_METRICS || undefined),
    );
const program = new Command('ganeti-temporal-worker').showHelpAfterError();
const backend = () =>
  new Option('--backend <backend>', 'node backend (qemu: real QEMU over QMP; GANETI_TEMPORAL_QEMU_ACCEL=tcg|kvm, see docs/qemu.md)')
    .choices([...BACKENDS])
    .default('sim');
logOptions(
  program
    .command('start')
    .description('embedded dev server + orchestrator + all node agents of the cluster')
    .addOption(backend())
    .addOption(
      new Option('--hosts <hosts>', 'local: the agents in this process; netns: each node a network namespace with its agent (root)')
        .choices(['local', 'netns'])
        .default('local'),
    ),
).action(start);
program.command('qemu-boot', { hidden: true }).requiredOption('--node <name>').action(qemuBoot);
logOptions(program.command('orchestrator').description('the orchestrator worker')).action(orchestrator);
logOptions(program.command('node-agent'))
  .description("one node's agent")
  .requiredOption('--node <name>', 'the node this agent runs on')
  .addOption(backend())
  .option('--cluster <name>', 'cluster name (default: from the configuration under GANETI_TEMPORAL_HOME)')
  .option('--hooks-dir <dir>', 'hooks directory (default: $GANETI_TEMPORAL_HOME/nodes/<node>/hooks)')
  .action(nodeAgent);
addPayloadKeyCommands(program, () => keyFilePath(homeDir()), say);

program.parseAsync().catch((e: unknown) => {
  console.error(`[ganeti-temporal] ${(e as Error).message}`);
  process.exit(1);
});
