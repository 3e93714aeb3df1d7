/**
 * `ganeti-temporal`, a Ganeti-shaped CLI (`npm run --silent cli -- <args>`). The command groups live
 * in cli/ (instance, node, job, setup, sim); this module builds the program and runs it.
 *
 * Exit codes (EXIT, by error type: see cli/errors.ts): 0 success; 1 the operation failed while
 * executing (or was cancelled/terminated); 2 usage error; 3 prerequisites not met (nothing changed);
 * 4 refused, the instance is busy; 5 environment error (no cluster configuration, Temporal
 * unreachable); 6 request refused (an abort after the point of no return, or of a finished operation).
 */
import { Command, CommanderError } from 'commander';
import { formatOpError } from '../domain/errors.js';
import { EXIT, exitCodeFor } from './cli/errors.js';
import { addInstanceCommands } from './cli/instance.js';
import { addJobCommands } from './cli/job.js';
import { addNodeCommands } from './cli/node.js';
import { printJson } from './cli/output.js';
import { addSetupCommand } from './cli/setup.js';
import { addSimCommands } from './cli/sim.js';

export { EXIT, exitCodeFor };

export function buildProgram(): Command {
  const program = new Command('ganeti-temporal')
    .description("Ganeti's instance migration, failover and cleanup as Temporal workflows")
    .showHelpAfterError()
    .exitOverride();
  addInstanceCommands(program);
  addNodeCommands(program);
  addJobCommands(program);
  addSetupCommand(program);
  addSimCommands(program);
  return program;
}

export async function main(argv = process.argv): Promise<number> {
  const program = buildProgram();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (e) {
    const r = exitCodeFor(e);
    // Commander has already printed its own message (or the help).
    if (e instanceof CommanderError) return r.code;
    if (json) printJson({ error: { type: r.type, message: r.message, ...(r.codeName ? { code: r.codeName } : {}) } });
    else process.stderr.write(`${formatOpError({ type: r.type, message: r.message, code: r.codeName })}\n`);
    return r.code;
  }
}

const isMain = process.argv[1] && /(?:^|[\\/])(?:cli\.ts|ganeti-temporal(?:\.mjs)?)$/.test(process.argv[1]);
if (isMain || process.env.GANETI_TEMPORAL_CLI_MAIN === '1') {
  void main().then((code) => process.exit(code));
}
