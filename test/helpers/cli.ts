/** Runs the CLI (client/cli.ts) as a child process, the way an operator does. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../worker/temporal-cli.js';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json: () => unknown;
}

export function cli(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'client/cli.ts'), ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env, GANETI_TEMPORAL_CLI_MAIN: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, json: () => JSON.parse(stdout) }));
  });
}

/** Runs the CLI on a pseudo-terminal (`script`), as an operator's shell would; resolves to what it printed. */
export function cliOnTerminal(args: string[], env: Record<string, string>): Promise<string> {
  const cmd = [process.execPath, '--import', 'tsx', join(PROJECT_ROOT, 'client/cli.ts'), ...args].map((a) => `'${a}'`).join(' ');
  return new Promise((resolve) => {
    let text = '';
    const p = spawn('script', ['-qec', cmd, '/dev/null'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env, GANETI_TEMPORAL_CLI_MAIN: '1', COLUMNS: '120' },
    });
    p.stdout.on('data', (d) => (text += d));
    p.on('close', () => resolve(text));
  });
}
