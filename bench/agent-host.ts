/**
 * Several simulated node agents in one process, for the benchmarks: `tsx bench/agent-host.ts
 * node1,node2,…` with GANETI_TEMPORAL_HOME, TEMPORAL_ADDRESS and the cluster name in BENCH_CLUSTER.
 * A benchmark spreads its agents over a few such processes, so that no single event loop carries
 * every node's simulated RPCs (and their heartbeats). Prints "agents ready" once all poll; stops on
 * SIGTERM.
 */
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { clusterDataConverter } from '../connection/settings.js';
import { startSimAgents } from './common.js';

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const nodes = (process.argv[2] ?? '').split(',').filter(Boolean);
  const home = process.env.GANETI_TEMPORAL_HOME;
  const address = process.env.TEMPORAL_ADDRESS;
  const cluster = process.env.BENCH_CLUSTER;
  if (!nodes.length || !home || !address || !cluster)
    throw new Error('usage: BENCH_CLUSTER=… GANETI_TEMPORAL_HOME=… TEMPORAL_ADDRESS=… agent-host.ts node1,node2');
  const connection = await NativeConnection.connect({ address });
  const workers = await startSimAgents(connection, { cluster, home, nodes, dataConverter: clusterDataConverter(home) });
  console.log('agents ready');
  const stop = () => {
    workers.forEach(({ w }) => w.shutdown());
    // Running waits get the agents' grace time; then the process ends whatever still runs.
    setTimeout(() => process.exit(0), 15_000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await Promise.all(workers.map(({ run }) => run.catch(() => undefined)));
  await connection.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
