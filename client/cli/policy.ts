/**
 * The migration policy flags of `instance migrate` and `node migrate` (issue 14, domain/policy.ts):
 * each one strict (a bad value is a usage error, nothing starts); unset ones fall back to the
 * instance's hvparams, then to the cluster's defaults.
 */
import { Option, type Command } from 'commander';
import { BANDWIDTH_MAX_MIBPS, DOWNTIME_MAX_MS } from '../../domain/limits.js';
import {
  COMPLETION_TIMEOUT_MAX_SEC_PER_GIB,
  MigrationPolicyInputSchema,
  ON_TIMEOUT_ACTIONS,
  PROGRESS_TIMEOUT_MAX_SEC,
  type MigrationPolicyInput,
} from '../../domain/policy.js';
import { wholeNumber } from './args.js';
import { UsageError } from './errors.js';

/** Adds the policy flags to `cmd`. */
export function addPolicyOptions(cmd: Command): Command {
  return cmd
    .option('--bandwidth <MiBps>', 'migration bandwidth, MiB/s', wholeNumber('--bandwidth', 1, BANDWIDTH_MAX_MIBPS))
    .option(
      '--max-downtime <ms>',
      'the longest the guest may pause at the switch-over, ms',
      wholeNumber('--max-downtime', 1, DOWNTIME_MAX_MS),
    )
    .option('--auto-converge', "throttle the guest's vCPUs while the transfer lags (QEMU auto-converge)")
    .option('--no-auto-converge', 'no auto-converge, whatever the instance or cluster says')
    .option('--postcopy', 'allow post-copy (on timeout or force-complete)')
    .option('--no-postcopy', 'no post-copy, whatever the instance or cluster says')
    .option(
      '--completion-timeout <sec-per-GiB>',
      'the whole transfer may take this many seconds per GiB of guest memory (0: no timeout)',
      wholeNumber('--completion-timeout', 0, COMPLETION_TIMEOUT_MAX_SEC_PER_GIB),
    )
    .option(
      '--progress-timeout <sec>',
      'a stall: the remaining memory has not gone down for this long (0: none)',
      wholeNumber('--progress-timeout', 0, PROGRESS_TIMEOUT_MAX_SEC),
    )
    .addOption(new Option('--on-timeout <action>', 'what a timeout does').choices([...ON_TIMEOUT_ACTIONS]));
}

/** The policy the flags ask for; undefined when none was given. */
export function policyFromOptions(o: Record<string, unknown>): MigrationPolicyInput | undefined {
  const p: Record<string, unknown> = {};
  if (o.bandwidth !== undefined) p.bandwidth = o.bandwidth;
  if (o.maxDowntime !== undefined) p.maxDowntimeMs = o.maxDowntime;
  if (o.autoConverge !== undefined) p.autoConverge = o.autoConverge;
  if (o.postcopy !== undefined) p.postcopy = o.postcopy;
  if (o.completionTimeout !== undefined) p.completionTimeoutSecPerGiB = o.completionTimeout;
  if (o.progressTimeout !== undefined) p.progressTimeoutSec = o.progressTimeout;
  if (o.onTimeout !== undefined) p.onTimeout = o.onTimeout;
  if (Object.keys(p).length === 0) return undefined;
  const policy = MigrationPolicyInputSchema.parse(p);
  if (policy.onTimeout === 'postcopy' && policy.postcopy === false) {
    throw new UsageError('--on-timeout postcopy needs post-copy to be allowed: drop --no-postcopy (or give --postcopy)');
  }
  return policy;
}
