/** `sim`: the simulated cluster (reset, status, inject, power, set, log) and `sim fault` (add, clear, list). */
import { Option, type Command } from 'commander';
import { instanceHwStatus, inject, INJECT_STATES, setPower, type InjectState } from '../../adapters/sim/cluster.js';
import { addFault, FAULT_MODES, type FaultMode } from '../../adapters/sim/faults.js';
import { SimHardware } from '../../adapters/sim/hardware.js';
import { seedDefaultCluster } from '../../adapters/sim/seed.js';
import { setTimeFactor } from '../../adapters/sim/state.js';
import { homeDir } from '../../connection/settings.js';
import { table } from '../views.js';
import { NODE_RPC_NAMES } from '../../domain/rpc-schemas.js';
import { confirm, confirmable, decimalNumber, wholeNumber } from './args.js';
import { hardware, instanceOrFail, nodeOrFail, openStore, readConfig, refuseWhileOperationsRun } from './context.js';
import { UsageError } from './errors.js';
import { print, printJson } from './output.js';

/** Bounds of the simulation parameters, the log tail and fault counts. */
const SIM_MAX = 1_000_000;
const LOG_TAIL_MAX = 100_000;
const FAULT_COUNT_MAX = 1_000_000;

export function addSimCommands(program: Command): void {
  const sim = program.command('sim').description('the simulated cluster (hardware truth, faults, breakage)');
  sim
    .command('reset')
    .description('recreate the default simulated cluster (configuration and hardware); asks first, refused while operations run')
    .option('-f, --force', 'do not ask for confirmation')
    .option('--json', 'print {home} (or the error) as JSON')
    .action(async (o: { force?: boolean; json?: boolean }) => {
      const home = homeDir();
      const store = openStore();
      const hw = SimHardware.forHome(home);
      const configured = await store.exists();
      if (configured || hw.exists()) {
        // Something is there to lose: not under running operations, and not without a yes.
        confirmable('sim reset', o.force);
        if (configured) await refuseWhileOperationsRun((await store.config()).cluster.name, 'resetting it');
        await confirm(
          'sim reset',
          `This recreates the default simulated cluster in ${home}: its configuration and simulated hardware are overwritten. Continue?`,
          o.force,
        );
      }
      await seedDefaultCluster({ exists: () => configured, initialise: (d) => store.initialise(d), config: () => store.config() }, hw);
      if (o.json) printJson({ home });
      else print(`default cluster created in ${home}`);
    });
  sim
    .command('status <instance>')
    .description("an instance's hardware truth: where it runs, DRBD roles and states")
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const inst = instanceOrFail(await readConfig(), name);
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
    .option('--json', 'print {instance, node, state} (or the error) as JSON')
    .action(async (name: string, o: { node: string; state: InjectState; json?: boolean }) => {
      const cfg = await readConfig();
      const inst = instanceOrFail(cfg, name);
      nodeOrFail(cfg, o.node);
      // A breakage that does not fit the instance or node is an InjectRefusedError (exit 2).
      await hardware().mutate((s, now) => inject(s, now, cfg, inst, o.node, o.state));
      if (o.json) printJson({ instance: name, node: o.node, state: o.state });
      else print(`${name} on ${o.node}: ${o.state}`);
    });
  sim
    .command('power <node> <state>')
    .description('power a simulated node off (everything on it stops, it answers nothing) or on')
    .option('--json', 'print {node, power} (or the error) as JSON')
    .action(async (name: string, state: string, o: { json?: boolean }) => {
      if (state !== 'on' && state !== 'off') throw new UsageError(`power state must be on or off, not ${state}`);
      nodeOrFail(await readConfig(), name);
      await hardware().mutate((s, now) => setPower(s, now, name, state === 'on'));
      if (o.json) printJson({ node: name, power: state });
      else print(`${name} powered ${state}`);
    });
  sim
    .command('set')
    .description('change simulation parameters')
    .option(
      '--time-factor <n>',
      `simulated seconds per real second (above 0, at most ${SIM_MAX})`,
      decimalNumber('--time-factor', 0, SIM_MAX, true),
    )
    .option('--sync-rate <MiBps>', 'DRBD resync rate', decimalNumber('--sync-rate', 0, SIM_MAX))
    .option(
      '--disk-write-rate <MiBps>',
      'guest disk writes (out of sync while disconnected)',
      decimalNumber('--disk-write-rate', 0, SIM_MAX),
    )
    .option('--reconnect-resync <MiB>', 'resync after every reconnection', decimalNumber('--reconnect-resync', 0, SIM_MAX))
    .option('--guest-dirty-rate <MiBps>', 'guest RAM dirtying rate (live migration)', decimalNumber('--guest-dirty-rate', 0, SIM_MAX))
    .option('--json', 'print errors as JSON (the parameters are printed as JSON anyway)')
    .action(
      async (o: {
        timeFactor?: number;
        syncRate?: number;
        diskWriteRate?: number;
        reconnectResync?: number;
        guestDirtyRate?: number;
        json?: boolean;
      }) => {
        const { json: _json, ...values } = o;
        const params = await hardware().mutate((s) => {
          if (values.timeFactor !== undefined) setTimeFactor(s, values.timeFactor);
          const { timeFactor: _t, ...rest } = values;
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
    .option('--tail <n>', `last N entries (1 to ${LOG_TAIL_MAX})`, wholeNumber('--tail', 1, LOG_TAIL_MAX), 50)
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
    .addOption(new Option('--rpc <name>', 'Ganeti RPC name, e.g. drbd_attach_net').choices([...NODE_RPC_NAMES]).makeOptionMandatory())
    .option('--node <node>', 'only on this node')
    .addOption(new Option('--mode <mode>', 'fault mode').choices([...FAULT_MODES]).makeOptionMandatory())
    .option('--times <k>', 'how many times (default: 1 for transient, always otherwise)', wholeNumber('--times', 0, FAULT_COUNT_MAX))
    .option('--skip <k>', 'let this many calls through first', wholeNumber('--skip', 0, FAULT_COUNT_MAX))
    .option('--json', 'print the fault as JSON')
    .action(async (o: { rpc: string; node?: string; mode: FaultMode; times?: number; skip?: number; json?: boolean }) => {
      if (o.node) nodeOrFail(await readConfig(), o.node);
      const f = await hardware().mutate((s) => addFault(s, { rpc: o.rpc, node: o.node, mode: o.mode, times: o.times, skip: o.skip }));
      if (o.json) printJson(f);
      else print(`fault #${f.id}: ${f.mode} ${f.rpc}${f.node ? ` on ${f.node}` : ''}`);
    });
  fault
    .command('clear')
    .description('remove all faults')
    .option('--json', 'print {cleared} (or the error) as JSON')
    .action(async (o: { json?: boolean }) => {
      const cleared = await hardware().mutate((s) => {
        const n = s.faults.length;
        s.faults = [];
        return n;
      });
      if (o.json) printJson({ cleared });
      else print('faults cleared');
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
