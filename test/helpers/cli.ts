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
