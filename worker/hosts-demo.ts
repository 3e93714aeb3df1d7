/**
 * `npm start -- --hosts netns` (as root): the demo cluster's nodes as network hosts on this machine
 * (worker/netns.ts). Each node agent runs as its own process inside its node's namespace; the dev
 * server, the orchestrator and the CLI stay in the root namespace, and the agents reach the server
 * through a relay on the management network. With the qemu backend, each node's guests are booted
 * inside its namespace, so QEMU listens and migrates on the node's replication address.
 *
 * Stopping ends the agents; the hosts are removed unless guests still run in them (QEMU outlives its
 * agent): then they are kept, and the next start reuses them.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ClusterConfig } from '../domain/types.js';
import { NetHosts } from './netns.js';

/** The demo hosts' id and networks (management, replication): fixed, so a restarted demo finds them. */
export const DEMO_HOSTS_ID = 'gtdemo';
export const DEMO_NETWORKS = { m: '10.213.1', r: '10.213.2' } as const;

/** The default cluster's addresses for the demo hosts: node i (sorted) has `.11+i` on both networks. */
export const DEMO_HOST_ADDRESSES = { primaryNet: `${DEMO_NETWORKS.m}.`, secondaryNet: `${DEMO_NETWORKS.r}.` };

/** The cluster's nodes in host order, refused unless each has its host's addresses (seeded with --hosts netns). */
export function demoNodes(cfg: ClusterConfig): string[] {
  const nodes = Object.keys(cfg.nodes).sort();
  const wrong = nodes.filter((n, i) => cfg.nodes[n]!.secondaryIp !== `${DEMO_NETWORKS.r}.${11 + i}`);
  if (wrong.length) {
    throw new Error(
      `the cluster ${cfg.cluster.name} was not created for --hosts netns (secondary IPs of ${wrong.join(', ')} are not on ` +
        `${DEMO_NETWORKS.r}.0/24); start with a fresh GANETI_TEMPORAL_HOME`,
    );
  }
  return nodes;
}

export interface HostsDemoOptions {
  cfg: ClusterConfig;
  backend: 'sim' | 'qemu';
  home: string;
  /** The port of the embedded dev server on loopback (relayed to the hosts). */
  devPort: number;
  say: (msg: string) => void;
}

export interface HostsDemo {
  hosts: NetHosts;
  /** Ends the agents, then removes the hosts unless guests run in them. */
  stop(): Promise<void>;
}

/** This worker entry point again, with the same loader (tsx in development), inside `ns`: `ip`'s arguments. */
const entryInNamespace = (ns: string, args: string[]): string[] => [
  'netns',
  'exec',
  ns,
  process.execPath,
  ...process.execArgv,
  process.argv[1]!,
  ...args,
];

export async function startHostsDemo(o: HostsDemoOptions): Promise<HostsDemo> {
  const nodes = demoNodes(o.cfg);
  const hosts = NetHosts.create(nodes, { id: DEMO_HOSTS_ID, networks: DEMO_NETWORKS, reuse: true });
  const address = await hosts.forward(o.devPort);
  const env = { ...process.env, GANETI_TEMPORAL_HOME: o.home, TEMPORAL_ADDRESS: address };
  o.say(`hosts: ${nodes.map((n) => `${n} (${hosts.host(n).ns}: ${hosts.host(n).mgmtIp}, secondary ${hosts.host(n).replIp})`).join(', ')}`);
  if (o.backend === 'qemu') {
    for (const node of nodes) {
      const r = spawnSync(
        'ip',
        ['netns', 'exec', hosts.host(node).ns, process.execPath, ...process.execArgv, process.argv[1]!, 'qemu-boot', '--node', node],
        {
          env,
          stdio: 'inherit',
        },
      );
      if (r.status !== 0) o.say(`qemu: booting the guests of ${node} failed (exit ${r.status})`);
    }
  }
  const agents = nodes.map((node) =>
    spawn(
      'ip',
      entryInNamespace(hosts.host(node).ns, ['node-agent', '--node', node, '--backend', o.backend, '--cluster', o.cfg.cluster.name]),
      {
        env,
        stdio: 'inherit',
      },
    ),
  );
  return {
    hosts,
    async stop() {
      await Promise.all(
        agents.map(
          (a) =>
            new Promise<void>((resolve) => {
              if (a.exitCode !== null || a.signalCode !== null) return resolve();
              a.once('exit', () => resolve());
              a.kill('SIGTERM');
            }),
        ),
      );
      const busy = nodes.filter((n) => hosts.pids(n).length > 0);
      if (busy.length) {
        o.say(`hosts kept: guests still run on ${busy.join(', ')} (the next start with --hosts netns reuses the hosts)`);
        hosts.closeRelays();
      } else hosts.teardown();
    },
  };
}
