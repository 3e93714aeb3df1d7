/**
 * The SDK runtime of a worker process: log level and format, and Prometheus metrics.
 *   --log-level WARN|INFO|DEBUG        (GANETI_TEMPORAL_LOG_LEVEL)
 *   --log-format text|json             (GANETI_TEMPORAL_LOG_FORMAT) json = one object per line:
 *                                        {"time","level","message",...metadata}
 *   --metrics <host:port>              (GANETI_TEMPORAL_METRICS) serve Prometheus metrics on /metrics
 * Core (Rust) logs are forwarded through the same logger.
 */
import { DefaultLogger, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';

export type LogFormat = 'text' | 'json';

export interface RuntimeSettings {
  level: 'WARN' | 'INFO' | 'DEBUG';
  format: LogFormat;
  /** host:port for Prometheus, e.g. 127.0.0.1:9464. */
  metrics?: string | undefined;
}

/** Warnings that say nothing to an operator (node agents host no workflows by design). */
const NOISE = [/No workflows registered, not polling for workflow tasks/];

function jsonLine(entry: LogEntry): string {
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  return JSON.stringify({ time, level: entry.level, message: entry.message, ...entry.meta }, (_k, v: unknown) =>
    typeof v === 'bigint' ? v.toString() : v,
  );
}

export function installRuntime(s: RuntimeSettings): void {
  const write = (entry: LogEntry) => {
    if (NOISE.some((re) => re.test(entry.message))) return;
    if (s.format === 'json') process.stdout.write(`${jsonLine(entry)}\n`);
    else {
      const meta =
        entry.meta && Object.keys(entry.meta).length
          ? ` ${JSON.stringify(entry.meta, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`
          : '';
      process.stderr.write(
        `${new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString()} [${entry.level}] ${entry.message}${meta}\n`,
      );
    }
  };
  Runtime.install({
    logger: new DefaultLogger(s.level as LogLevel, write),
    telemetryOptions: {
      logging: { forward: {}, filter: { core: s.level, other: s.level } },
      ...(s.metrics ? { metrics: { prometheus: { bindAddress: s.metrics } } } : {}),
    },
  });
}
