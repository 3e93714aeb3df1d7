/** `sim`: the simulated cluster (reset, status, inject, power, set, log) and `sim fault` (add, clear, list). */
import { Option, type Command } from 'commander';
import { instanceHwStatus, inject, INJECT_STATES, setPower, type InjectState } from '../../adapters/sim/cluster.js';
import { addFault, FAULT_MODES, type FaultMode } from '../../adapters/sim/faults.js';
import { SimHardware } from '../../adapters/sim/hardware.js';
import { seedDefaultCluster } from '../../adapters/sim/seed.js';
import { setTimeFactor } from '../../adapters/sim/state.js';
import { FileConfigStore } from '../../adapters/store/config-store.js';
import { homeDir } from '../../connection/settings.js';
import { table } from '../views.js';
import { hardware, instanceOrFail, nodeOrFail, readConfig } from './context.js';
import { UsageError } from './errors.js';
import { print, printJson } from './output.js';

export function addSimCommands(program: Command): void {
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
      nodeOrFail(cfg, o.node);
      // A breakage that does not fit the instance or node is an InjectRefusedError (exit 2).
      await hardware().mutate((s, now) => inject(s, now, cfg, inst, o.node, o.state));
      print(`${name} on ${o.node}: ${o.state}`);
    });
  sim
    .command('power <node> <state>')
    .description('power a simulated node off (everything on it stops, it answers nothing) or on')
    .action(async (name: string, state: string) => {
      if (state !== 'on' && state !== 'off') throw new UsageError(`power state must be on or off, not ${state}`);
      nodeOrFail(readConfig(), name);
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
            throw new UsageError(`invalid value for ${k}: ${String(v)}`);
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
  addFaultCommands(sim);
}

function addFaultCommands(sim: Command): void {
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
        if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new UsageError(`--${k} must be a whole number ≥ 0`);
      }
      if (o.node) nodeOrFail(readConfig(), o.node);
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
}
