/**
 * The deployable build (docs/deploy.md), with real processes: `npm run build` compiles to dist/ with
 * a prebuilt workflow bundle, and the compiled bin, workers and replay gate run on plain Node — a
 * loader hook in each of those processes refuses any TypeScript module or tsx. The node agent,
 * restarted 10 times while the QEMU guest it started runs (SIGTERM or SIGKILL of the agent alone, as
 * systemd's KillMode=process does, or SIGKILL of its whole process group), loses no guest, and the
 * last agent re-attaches: the guest live-migrates through it. The systemd units pass
 * `systemd-analyze verify` where systemd's tools are installed, and the agent unit runs under a real
 * systemd booted in a private namespace (helpers/systemd-boot.ts): `systemctl restart`, stop/start
 * and kill lose no guest, and the test would see a unit without KillMode=process kill it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { readHeartbeat } from '../../adapters/qemu/guest.js';
import { isOurQemu } from '../../adapters/qemu/process.js';
import { qmpArg } from '../../adapters/qemu/runtime.js';
import { qemuNode } from '../../worker/backends.js';
import type { QemuNode } from '../../adapters/qemu/node.js';
import type { workerWorkflowBundle } from '../../worker/bundle.js';
import { PROJECT_ROOT } from '../../worker/temporal-cli.js';
import { createTestCluster, type TestCluster } from '../helpers/cluster.js';
import { ensureCommand, which } from '../helpers/system-packages.js';
import { SYSTEMD, Systemd } from '../helpers/systemd-boot.js';
import { useServer } from '../helpers/temporal.js';
import { killClusterQemus, TEST_MEMORY } from '../qemu/qemu-harness.js';

const DIST = join(PROJECT_ROOT, 'dist');
const server = useServer();
let guardDir = '';
/** `--import` of a loader hook that fails the process on any .ts module or anything of tsx. */
let guard: string[] = [];

beforeAll(async () => {
  guardDir = mkdtempSync(join(tmpdir(), 'ganeti-temporal-no-ts-'));
  writeFileSync(
    join(guardDir, 'hooks.mjs'),
    `export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (/\\.[cm]?tsx?$/.test(new URL(r.url).pathname) || /[\\\\/]node_modules[\\\\/]tsx[\\\\/]/.test(r.url)) {
    throw new Error('TypeScript at run time: ' + r.url);
  }
  return r;
}
`,
  );
  writeFileSync(join(guardDir, 'register.mjs'), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`);
  guard = ['--import', join(guardDir, 'register.mjs')];
  const build = await run('npm', ['run', '--silent', 'build'], process.env);
  if (build.code !== 0) throw new Error(`npm run build failed (${build.code}):\n${build.out}`);
}, 300_000);
afterAll(() => rmSync(guardDir, { recursive: true, force: true }));

const children: ChildProcess[] = [];
const clusters: TestCluster[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) await stop(c, 'SIGKILL', true);
  for (const c of clusters.splice(0)) {
    await killClusterQemus(c.home);
    c.remove();
  }
});

/** The environment of a production process: no tsx preloaded, no test-only settings. */
function prodEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of [
    'NODE_OPTIONS',
    'GANETI_TEMPORAL_WORKFLOW_BUNDLE',
    'GANETI_TEMPORAL_DATABASE_URL',
    'GANETI_TEMPORAL_FROM_SOURCE',
    'TEMPORAL_PROFILE',
  ]) {
    delete env[k];
  }
  return env;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stdout = '';
    p.stdout.on('data', (d) => ((stdout += d), (out += d)));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out, stdout }));
  });
}

/** The installed bin, on the compiled code. */
const bin = (args: string[], env: NodeJS.ProcessEnv) =>
  run(process.execPath, [...guard, join(PROJECT_ROOT, 'bin/ganeti-temporal.mjs'), ...args], env);

interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<void>;
}

/** `node dist/worker/main.js …` in its own process group (as a service manager starts it). */
function worker(args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, [...guard, join(DIST, 'worker/main.js'), ...args], {
    cwd: PROJECT_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return { child, output: () => out, exited };
}

async function ready(p: Proc, line: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!p.output().includes(line)) {
    if (p.child.exitCode !== null || p.child.signalCode !== null)
      throw new Error(`exited (${p.child.exitCode ?? p.child.signalCode}):\n${p.output()}`);
    if (Date.now() > deadline) throw new Error(`not ready after 60 s:\n${p.output()}`);
    await sleep(100);
  }
}

/** Signals the process (or its whole process group) and waits for it to exit. */
async function stop(child: ChildProcess, signal: NodeJS.Signals, group = false): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  try {
    process.kill(group ? -child.pid! : child.pid!, signal);
  } catch {
    // gone already
  }
  await Promise.race([exited, sleep(30_000)]);
}

/** A cluster of web1 alone (DRBD node1 → node2, the test guest's memory), secondary IPs on loopback. */
async function guestCluster(): Promise<TestCluster> {
  ensureCommand('as', 'binutils');
  const c = await createTestCluster({
    configure: (cfg) => {
      Object.values(cfg.nodes).forEach((n, i) => (n.secondaryIp = `127.0.1.${11 + i}`));
      for (const name of Object.keys(cfg.instances)) {
        if (name !== 'web1') delete cfg.instances[name];
      }
      const web1 = cfg.instances.web1!;
      web1.beparams.maxmem = TEST_MEMORY;
      web1.beparams.minmem = TEST_MEMORY / 2;
    },
  });
  clusters.push(c);
  return c;
}

/** web1's heartbeat counter through the node's driver, once its guest has booted. */
async function guestHeartbeat(driver: QemuNode): Promise<number> {
  for (let i = 0; ; i++) {
    const hb = await readHeartbeat(driver.qmpPath('web1')).catch(() => null);
    if (hb?.booted) return hb.counter;
    if (i > 100) throw new Error(`the guest on ${driver.node} does not count`);
    await sleep(50);
  }
}

/** Field `n` (1-based, as in proc(5)) of /proc/<pid>/stat. */
function statField(pid: number, n: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3]!;
}

test('the compiled CLI runs without TypeScript: help, and commands against a Temporal server', async () => {
  expect(existsSync(join(DIST, 'workflow-bundle.js'))).toBe(true);
  expect(existsSync(join(DIST, 'adapters/qemu/guest/heartbeat.S'))).toBe(true);
  // The compiled workers load the prebuilt bundle (an explicit GANETI_TEMPORAL_WORKFLOW_BUNDLE wins).
  const compiled = (await import(join(DIST, 'worker/bundle.js'))) as { workerWorkflowBundle: typeof workerWorkflowBundle };
  expect(await compiled.workerWorkflowBundle({})).toEqual({ codePath: join(DIST, 'workflow-bundle.js') });
  expect(await compiled.workerWorkflowBundle({ GANETI_TEMPORAL_WORKFLOW_BUNDLE: '/b.js' })).toEqual({ codePath: '/b.js' });
  const help = await bin(['--help'], prodEnv({}));
  expect(help.code, help.out).toBe(0);
  expect(help.stdout).toContain('Usage: ganeti-temporal');
  expect(help.stdout).toMatch(/^\s+instance\s/m);

  const c = await createTestCluster();
  clusters.push(c);
  const env = prodEnv({ GANETI_TEMPORAL_HOME: c.home, TEMPORAL_ADDRESS: server.env().address, TEMPORAL_NAMESPACE: 'default' });
  const list = await bin(['instance', 'list', '--json'], env);
  expect(list.code, list.out).toBe(0);
  expect((JSON.parse(list.stdout) as Array<{ name: string }>).map((i) => i.name)).toContain('web1');
  const jobs = await bin(['job', 'list', '--json'], env);
  expect(jobs.code, jobs.out).toBe(0);
  expect(JSON.parse(jobs.stdout)).toEqual([]);
});

test(
  'the upgrade gate on the compiled code: every recorded history replays against the prebuilt bundle',
  { timeout: 300_000 },
  async () => {
    const histories = join(PROJECT_ROOT, 'test/histories');
    const count = readdirSync(histories)
      .filter((d) => statSync(join(histories, d)).isDirectory())
      .reduce((n, d) => n + readdirSync(join(histories, d)).filter((f) => f.endsWith('.json')).length, 0);
    expect(count).toBeGreaterThan(10);
    const r = await run(
      process.execPath,
      [...guard, join(DIST, 'scripts/replay.js'), histories],
      prodEnv({ GANETI_TEMPORAL_HOME: guardDir }),
    );
    expect(r.code, r.out).toBe(0);
    expect(r.stdout.match(/^OK\s/gm)?.length).toBe(count);
    expect(r.stdout).toContain('all histories replay');
  },
);

test.skipIf(!which('systemd-analyze'))('the systemd units verify cleanly; the agent unit signals the agent alone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ganeti-temporal-units-'));
  try {
    for (const f of ['ganeti-temporal-orchestrator.service', 'ganeti-temporal-node-agent@.service']) {
      copyFileSync(join(PROJECT_ROOT, 'deploy', f), join(dir, f));
    }
    symlinkSync(join(dir, 'ganeti-temporal-node-agent@.service'), join(dir, 'ganeti-temporal-node-agent@node1.service'));
    const r = spawnSync(
      'systemd-analyze',
      ['verify', join(dir, 'ganeti-temporal-orchestrator.service'), join(dir, 'ganeti-temporal-node-agent@node1.service')],
      { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' } },
    );
    expect(r.status, r.stderr).toBe(0);
    // verify reports unknown or unparsable settings as warnings, with exit status 0.
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const agent = readFileSync(join(PROJECT_ROOT, 'deploy/ganeti-temporal-node-agent@.service'), 'utf8');
  expect(agent).toMatch(/^KillMode=process$/m);
  expect(agent).toMatch(/^ExecStart=\/usr\/bin\/node .*\/dist\/worker\/main\.js node-agent --node %i /m);
  const orch = readFileSync(join(PROJECT_ROOT, 'deploy/ganeti-temporal-orchestrator.service'), 'utf8');
  expect(orch).toMatch(/^ExecStart=\/usr\/bin\/node .*\/dist\/worker\/main\.js orchestrator$/m);
  expect(orch).toMatch(/^Environment=MALLOC_ARENA_MAX=2$/m);
  expect(orch).toMatch(/^ExecStart=\/usr\/bin\/node .*--max-semi-space-size=2 .*orchestrator$/m);
});

test(
  'the compiled node agent restarted 10 times while its guest runs: 0 guests lost, and the last agent migrates it',
  { timeout: 600_000 },
  async () => {
    const c = await guestCluster();
    const env = prodEnv({
      GANETI_TEMPORAL_HOME: c.home,
      TEMPORAL_ADDRESS: server.env().address,
      TEMPORAL_NAMESPACE: 'default',
      GANETI_TEMPORAL_QEMU_ACCEL: 'tcg',
    });
    const agent = (node: string) => worker(['node-agent', '--node', node, '--backend', 'qemu'], env);
    const orchestrator = worker(['orchestrator'], env);
    let node1 = agent('node1');
    const node2 = agent('node2');
    await ready(orchestrator, 'orchestrator for cluster');
    await ready(node1, 'node agent for node1');
    await ready(node2, 'node agent for node2');

    // The guest is started through the compiled CLI, orchestrator and agent: QEMU is the agent's child,
    // in a session of its own (the default guest kernel assembled from dist/'s copy of the source).
    const started = await bin(['instance', 'start', 'web1', '--json'], env);
    expect(started.code, started.out).toBe(0);
    const driver = (node: string) => qemuNode({ home: c.home, node, watchMs: 0 });
    const meta = driver('node1').readMeta('web1')!;
    expect(meta?.pid).toBeGreaterThan(0);
    const pid = meta.pid!;
    const alive = () => isOurQemu(pid, qmpArg(meta.qmp), meta.startTime);
    expect(alive()).toBe(true);
    expect(Number(statField(pid, 4))).toBe(node1.child.pid); // ppid
    expect(Number(statField(pid, 6))).not.toBe(Number(statField(node1.child.pid!, 6))); // session
    const heartbeat = (node: string) => guestHeartbeat(driver(node));
    /** The guest's counter advances over 300 ms. */
    const counting = async (node: string): Promise<boolean> => {
      const a = await heartbeat(node);
      await sleep(300);
      return (await heartbeat(node)) > a;
    };
    expect(await counting('node1')).toBe(true);

    const ways = [
      { how: 'SIGTERM', signal: 'SIGTERM', group: false },
      { how: 'SIGKILL', signal: 'SIGKILL', group: false },
      { how: 'SIGKILL to its process group', signal: 'SIGKILL', group: true },
    ] as const;
    const rounds: Array<{ round: number; how: string; guestAlive: boolean; countingWithoutAgent: boolean; countingAfterRestart: boolean }> =
      [];
    for (let round = 1; round <= 10; round++) {
      const w = ways[(round - 1) % ways.length]!;
      await stop(node1.child, w.signal, w.group);
      expect(node1.child.exitCode !== null || node1.child.signalCode !== null).toBe(true);
      const guestAlive = alive();
      const countingWithoutAgent = guestAlive && (await counting('node1'));
      node1 = agent('node1');
      await ready(node1, 'node agent for node1');
      const countingAfterRestart = alive() && (await counting('node1'));
      rounds.push({ round, how: w.how, guestAlive, countingWithoutAgent, countingAfterRestart });
    }
    const lost = rounds.filter((r) => !r.guestAlive || !r.countingWithoutAgent || !r.countingAfterRestart);
    console.log(`node agent restarted ${rounds.length} times with its guest running: ${lost.length} guests lost`);
    expect(lost).toEqual([]);

    // The restarted agent re-attaches: a live migration through it moves the running guest to node2.
    const before = await heartbeat('node1');
    const migrated = await bin(['instance', 'migrate', 'web1', '--json'], env);
    expect(migrated.code, migrated.out).toBe(0);
    expect(JSON.parse(migrated.stdout)).toMatchObject({ outcome: 'migrated', sourceNode: 'node1', targetNode: 'node2' });
    expect(alive()).toBe(false);
    expect(await heartbeat('node2')).toBeGreaterThanOrEqual(before);
    expect(await counting('node2')).toBe(true);
  },
);

test.skipIf(!existsSync(SYSTEMD))(
  'under a real systemd: the agent unit restarted, stopped and killed while its guest runs loses no guest; with KillMode=control-group a restart would kill it',
  { timeout: 600_000 },
  async () => {
    const c = await guestCluster();
    const settings = {
      GANETI_TEMPORAL_HOME: c.home,
      TEMPORAL_ADDRESS: server.env().address,
      TEMPORAL_NAMESPACE: 'default',
      GANETI_TEMPORAL_QEMU_ACCEL: 'tcg',
    };
    const env = prodEnv(settings);
    const unit = 'ganeti-temporal-node-agent@.service';
    // The unit file as shipped. The drop-in only adapts it to the test boot: no sysinit (masked) and
    // the agent's output in a file the test reads.
    const sd = await Systemd.boot({
      root: PROJECT_ROOT,
      units: {
        [unit]: readFileSync(join(PROJECT_ROOT, 'deploy', unit), 'utf8'),
        [`${unit}.d/test.conf`]: `[Unit]\nDefaultDependencies=no\n[Service]\nStandardOutput=append:${c.home}/agent-%i.log\nStandardError=inherit\n`,
      },
      etc: {
        'ganeti-temporal.env': Object.entries(settings)
          .map(([k, v]) => `${k}=${v}\n`)
          .join(''),
      },
      keep: [c.home],
    });
    try {
      const agentLog = (node: string) =>
        existsSync(join(c.home, `agent-${node}.log`)) ? readFileSync(join(c.home, `agent-${node}.log`), 'utf8') : '';
      /** Waits until the agent unit of `node` has said it is ready `n` times. */
      const started = async (node: string, n: number) => {
        const deadline = Date.now() + 60_000;
        while (agentLog(node).split(`node agent for ${node} `).length - 1 < n) {
          if (Date.now() > deadline)
            throw new Error(
              `agent ${node} not ready (${n}):\n${agentLog(node)}\n${sd.systemctl(['status', `ganeti-temporal-node-agent@${node}`]).out}`,
            );
          await sleep(100);
        }
      };
      const mainPid = (node: string) =>
        Number(/MainPID=(\d+)/.exec(sd.systemctl(['show', '-p', 'MainPID', `ganeti-temporal-node-agent@${node}`]).out)?.[1]);
      for (const node of ['node1', 'node2']) expect(sd.systemctl(['start', `ganeti-temporal-node-agent@${node}`]).code).toBe(0);
      await started('node1', 1);
      await started('node2', 1);
      const orchestrator = worker(['orchestrator'], env);
      await ready(orchestrator, 'orchestrator for cluster');

      const up = await bin(['instance', 'start', 'web1', '--json'], env);
      expect(up.code, up.out).toBe(0);
      const driver = (node: string) => qemuNode({ home: c.home, node, watchMs: 0 });
      const qemuPid = driver('node1').readMeta('web1')!.pid; // as the agent saw it, in systemd's PID namespace
      expect(qemuPid).toBeGreaterThan(0);
      // QEMU is in the agent unit's control group, next to the agent.
      expect(sd.systemctl(['status', 'ganeti-temporal-node-agent@node1']).out).toMatch(/qemu-system-x86_64/);
      const heartbeat = (node: string) => guestHeartbeat(driver(node));
      let last = await heartbeat('node1');

      // restart, stop + start, and a SIGKILL of the agent that Restart=on-failure answers.
      const ways: Array<[string, () => void]> = [
        ['systemctl restart', () => expect(sd.systemctl(['restart', 'ganeti-temporal-node-agent@node1']).code).toBe(0)],
        [
          'systemctl stop, then start',
          () => {
            expect(sd.systemctl(['stop', 'ganeti-temporal-node-agent@node1']).code).toBe(0);
            expect(sd.systemctl(['is-active', 'ganeti-temporal-node-agent@node1']).out.trim()).toBe('inactive');
            expect(sd.systemctl(['start', 'ganeti-temporal-node-agent@node1']).code).toBe(0);
          },
        ],
        [
          'systemctl kill -s KILL (restarted by systemd)',
          () => expect(sd.systemctl(['kill', '-s', 'KILL', '--kill-whom=main', 'ganeti-temporal-node-agent@node1']).code).toBe(0),
        ],
      ];
      let readies = 1;
      const lost: string[] = [];
      for (let round = 0; round < 6; round++) {
        const [how, act] = ways[round % ways.length]!;
        const before = mainPid('node1');
        act();
        await started('node1', ++readies);
        expect(mainPid('node1')).not.toBe(before);
        // The same QEMU process (same pid, counter never reset) counts on.
        const now = await heartbeat('node1');
        await sleep(300);
        const later = await heartbeat('node1');
        if (driver('node1').readMeta('web1')?.pid !== qemuPid || now < last || later <= now) lost.push(`${how}: ${now} → ${later}`);
        last = later;
      }
      console.log(
        `agent unit under systemd restarted 6 times (restart, stop/start, SIGKILL) with its guest running: ${lost.length} guests lost`,
      );
      expect(lost).toEqual([]);

      // The agent started by systemd re-attaches: the guest live-migrates to node2.
      const migrated = await bin(['instance', 'migrate', 'web1', '--json'], env);
      expect(migrated.code, migrated.out).toBe(0);
      expect(JSON.parse(migrated.stdout)).toMatchObject({ outcome: 'migrated', sourceNode: 'node1', targetNode: 'node2' });
      expect(await heartbeat('node2')).toBeGreaterThanOrEqual(last);

      // The unit's KillMode=process is what keeps the guest: with systemd's default the same restart kills it.
      sd.writeEtc(`/etc/systemd/system/${unit}.d/kill-mode.conf`, '[Service]\nKillMode=control-group\n');
      expect(sd.systemctl(['daemon-reload']).code).toBe(0);
      expect(sd.systemctl(['restart', 'ganeti-temporal-node-agent@node2']).code).toBe(0);
      await started('node2', 2);
      expect(await readHeartbeat(driver('node2').qmpPath('web1')).catch(() => null)).toBeNull();
    } finally {
      await sd.stop();
    }
  },
);
