/**
 * `ganeti-temporal`, a Ganeti-shaped CLI (`npm run --silent cli -- <args>`). The command groups live
 * in cli/ (instance, node, job, setup, sim, config); this module builds the program and runs it.
 *
 * Exit codes (EXIT, by error type: see cli/errors.ts and docs/cli.md): 0 success; 1 the operation
 * failed while executing (or was cancelled/terminated, or not confirmed); 2 usage error; 3
 * prerequisites not met (nothing changed); 4 refused, the instance or cluster is busy; 5 environment
 * error (no cluster configuration, Temporal unreachable, TLS or connection settings); 6 request
 * refused (an abort after the point of no return, or of a finished operation). With `--json`
 * anywhere on the command line every error, the argument parser's included, is printed as JSON.
 */
import { Command, CommanderError } from 'commander';
import { formatOpError } from '../domain/errors.js';
import { OperationError } from './api.js';
import { EXIT, exitCodeFor } from './cli/errors.js';
import { addConfigCommands } from './cli/config.js';
import { addInstanceCommands } from './cli/instance.js';
import { addJobCommands } from './cli/job.js';
import { addNodeCommands } from './cli/node.js';
import { printJson } from './cli/output.js';
import { addSetupCommand } from './cli/setup.js';
import { addSimCommands } from './cli/sim.js';

export { EXIT, exitCodeFor };

/** The program; with `json`, the argument parser prints nothing itself (main prints its errors as JSON). */
export function buildProgram(json = false): Command {
  const program = new Command('ganeti-temporal')
    .description("Ganeti's instance migration, failover and cleanup as Temporal workflows")
    .exitOverride();
  // Set before the commands are added: subcommands inherit both.
  if (json) program.configureOutput({ outputError: () => undefined });
  else program.showHelpAfterError();
  addInstanceCommands(program);
  addNodeCommands(program);
  addJobCommands(program);
  addSetupCommand(program);
  addSimCommands(program);
  addConfigCommands(program);
  return program;
}

export async function main(argv = process.argv): Promise<number> {
  const json = argv.includes('--json');
  const program = buildProgram(json);
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (e) {
    const r = exitCodeFor(e);
    // Help and version are not errors; without --json commander has printed its own message.
    if (e instanceof CommanderError && (r.code === EXIT.ok || !json)) return r.code;
    if (e instanceof CommanderError) {
      printJson({ error: { type: r.type, message: r.message.replace(/^error: /, '') } });
      return r.code;
    }
    if (json) {
      // A node operation's failure carries its per-instance result.
      const result = e instanceof OperationError && e.result !== undefined ? { result: e.result } : {};
      printJson({ error: { type: r.type, message: r.message, ...(r.codeName ? { code: r.codeName } : {}) }, ...result });
    } else process.stderr.write(`${formatOpError({ type: r.type, message: r.message, code: r.codeName })}\n`);
    return r.code;
  }
}

const isMain = process.argv[1] && /(?:^|[\\/])(?:cli\.ts|client[\\/]cli\.js|ganeti-temporal(?:\.mjs)?)$/.test(process.argv[1]);
if (isMain || process.env.GANETI_TEMPORAL_CLI_MAIN === '1') {
  void main().then((code) => process.exit(code));
}
