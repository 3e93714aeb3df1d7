/**
 * Strict command-line values and Ganeti's confirmation convention.
 *
 * Numbers are parsed whole or not at all (`2x`, `-5`, `1e3`, `NaN` and empty strings are usage
 * errors, not 2, -5 or a default) and held to documented bounds. A command that Ganeti would ask
 * about asks on a terminal; `-f`/`--force` skips the question, and without a terminal and without
 * `-f` the command refuses (usage error) instead of guessing.
 */
import { createInterface } from 'node:readline/promises';
import { CliError, UsageError } from './errors.js';

const WHOLE = /^\d+$/;
const DECIMAL = /^\d+(?:\.\d+)?$/;

/** A whole number in [min, max] (digits only). */
export const wholeNumber =
  (flag: string, min: number, max: number) =>
  (v: string): number => {
    const n = WHOLE.test(v.trim()) ? Number(v.trim()) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not ${v}`);
    return n;
  };

/** A decimal number in [min, max] (digits with an optional fraction); `above` excludes min itself. */
export const decimalNumber =
  (flag: string, min: number, max: number, above = false) =>
  (v: string): number => {
    const n = DECIMAL.test(v.trim()) ? Number(v.trim()) : NaN;
    if (!Number.isFinite(n) || n < min || (above && n === min) || n > max) {
      throw new UsageError(`${flag} must be a number ${above ? 'above' : 'from'} ${min}${above ? ' and at most' : ' to'} ${max}, not ${v}`);
    }
    return n;
  };

/** The operator answered no (Ganeti's "Aborted."): nothing was done. */
export class NotConfirmedError extends CliError {
  readonly type = 'NotConfirmed';
}

/** Refuses at once (usage error) when `what` would need a confirmation that cannot be asked for. */
export function confirmable(what: string, force: boolean | undefined): void {
  if (!force && (!process.stdin.isTTY || !process.stderr.isTTY)) {
    throw new UsageError(`${what} needs a confirmation: answer it on a terminal, or pass -f/--force`);
  }
}

/**
 * Asks `question` on the terminal (on stderr, so stdout stays clean for --json); resolves on "y" or
 * "yes". `force` skips it; without a terminal it is a usage error saying that `what` needs -f.
 */
export async function confirm(what: string, question: string, force: boolean | undefined): Promise<void> {
  if (force) return;
  confirmable(what, force);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question}\ny/[n]: `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new NotConfirmedError('Aborted.');
  } finally {
    rl.close();
  }
}
