/**
 * Network faults on the test hosts (worker/netns.ts): a partition of a node from one of its networks
 * (nftables inside the node's namespace), a bandwidth cap on its link (tbf) and added latency on it
 * (`tc netem` where the kernel has it; otherwise a netfilter queue that holds every packet, see
 * nfq-delay.py: this machine's kernel has no sch_netem).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../worker/temporal-cli.js';
import type { NetHosts, Net } from '../../worker/netns.js';
import { ensureCommand } from './system-packages.js';

/**
 * Cuts the node off `net`: every packet from or to the node's address on it is refused (TCP with
 * a reset, everything else dropped), as a firewall or a dead switch port the kernel reports. On
 * the management network, or when `silent`, everything is dropped instead, as a cable pulled:
 * nobody is told, connections hang, and resume when the link returns.
 */
export function partition(hosts: NetHosts, node: string, net: Net, o: { silent?: boolean } = {}): void {
  const h = hosts.host(node);
  ensureCommand('nft', 'nftables');
  const table = `${hosts.id}${net}`;
  const iface = `${h.link[net]}i`;
  const verdict = net === 'r' && !o.silent ? 'reject with tcp reset' : 'drop';
  const rules = [
    `table inet ${table} {`,
    `  chain in { type filter hook input priority 0; policy accept; iifname "${iface}" meta l4proto tcp ${verdict}; iifname "${iface}" drop; }`,
    // The resets the input chain sends go out through the output chain: let them pass.
    `  chain out { type filter hook output priority 0; policy accept; oifname "${iface}" tcp flags & rst == rst ${verdict === 'drop' ? 'drop' : 'accept'}; oifname "${iface}" meta l4proto tcp ${verdict}; oifname "${iface}" drop; }`,
    '}',
  ].join('\n');
  execFileSync('ip', ['netns', 'exec', h.ns, 'nft', '-f', '-'], { input: rules });
}

/** Ends a partition of the node on `net`. */
export function heal(hosts: NetHosts, node: string, net: Net): void {
  try {
    execFileSync('ip', ['netns', 'exec', hosts.host(node).ns, 'nft', 'delete', 'table', 'inet', `${hosts.id}${net}`], { stdio: 'ignore' });
  } catch {
    // no partition
  }
}

/** Caps the traffic towards the node on `net` at `mbit` Mbit/s (a token bucket on the root end). */
export function capBandwidth(hosts: NetHosts, node: string, net: Net, mbit: number): void {
  const link = hosts.host(node).link[net];
  execFileSync('tc', ['qdisc', 'replace', 'dev', link, 'root', 'tbf', 'rate', `${mbit}mbit`, 'burst', '64kb', 'latency', '400ms']);
}

export function uncap(hosts: NetHosts, node: string, net: Net): void {
  try {
    execFileSync('tc', ['qdisc', 'del', 'dev', hosts.host(node).link[net], 'root'], { stdio: 'ignore' });
  } catch {
    // no cap
  }
}

/** How latency is added: netem on both ends of the link, or the queue delayer inside the namespace. */
export type LatencyMethod = 'netem' | 'nfqueue';

const QUEUE = 7;
const delayers = new Map<string, ChildProcess>();

/**
 * Adds `ms` of latency in each direction of the node's link on `net` (so a round trip across it
 * takes 2·ms longer). With `tc netem` when the kernel has it; otherwise every packet in or out of
 * the node's interface goes through a netfilter queue whose reader (nfq-delay.py, run inside the
 * namespace) holds it `ms` before accepting it. Answers the method used.
 */
export async function addLatency(hosts: NetHosts, node: string, net: Net, ms: number): Promise<LatencyMethod> {
  const h = hosts.host(node);
  const iface = `${h.link[net]}i`;
  try {
    execFileSync('tc', ['qdisc', 'replace', 'dev', h.link[net], 'root', 'netem', 'delay', `${ms}ms`], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'exec', h.ns, 'tc', 'qdisc', 'replace', 'dev', iface, 'root', 'netem', 'delay', `${ms}ms`], {
      stdio: 'pipe',
    });
    return 'netem';
  } catch (e) {
    if (!/unknown/i.test(String((e as { stderr?: unknown }).stderr ?? e))) throw e;
    // The root end may have taken netem before the namespace end refused; neither keeps it.
    try {
      execFileSync('tc', ['qdisc', 'del', 'dev', h.link[net], 'root'], { stdio: 'ignore' });
    } catch {
      // it did not
    }
  }
  ensureCommand('iptables', 'iptables');
  const delayer = hosts.spawn(node, 'python3', [join(PROJECT_ROOT, 'test/helpers/nfq-delay.py'), String(QUEUE), String(ms)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  delayers.set(`${h.ns}/${net}`, delayer);
  const ready = new Promise<void>((resolve, reject) => {
    delayer.stdout!.on('data', (b: Buffer) => {
      if (b.toString().includes('ready')) resolve();
    });
    delayer.once('exit', (code) => reject(new Error(`nfq-delay.py exited with ${code}`)));
  });
  await ready;
  for (const [chain, dir] of [
    ['INPUT', '-i'],
    ['OUTPUT', '-o'],
  ] as const) {
    hosts.exec(node, 'iptables', ['-I', chain, dir, iface, '-j', 'NFQUEUE', '--queue-num', String(QUEUE), '--queue-bypass']);
  }
  return 'nfqueue';
}

/** Ends the added latency on the node's link on `net`. */
export async function removeLatency(hosts: NetHosts, node: string, net: Net): Promise<void> {
  const h = hosts.host(node);
  const iface = `${h.link[net]}i`;
  for (const [cmd, args] of [
    ['tc', ['qdisc', 'del', 'dev', h.link[net], 'root']],
    ['ip', ['netns', 'exec', h.ns, 'tc', 'qdisc', 'del', 'dev', iface, 'root']],
    [
      'ip',
      ['netns', 'exec', h.ns, 'iptables', '-D', 'INPUT', '-i', iface, '-j', 'NFQUEUE', '--queue-num', String(QUEUE), '--queue-bypass'],
    ],
    [
      'ip',
      ['netns', 'exec', h.ns, 'iptables', '-D', 'OUTPUT', '-o', iface, '-j', 'NFQUEUE', '--queue-num', String(QUEUE), '--queue-bypass'],
    ],
  ] as const) {
    try {
      execFileSync(cmd, [...args], { stdio: 'ignore' });
    } catch {
      // not there
    }
  }
  const delayer = delayers.get(`${h.ns}/${net}`);
  delayers.delete(`${h.ns}/${net}`);
  if (delayer && delayer.exitCode === null && delayer.signalCode === null) {
    delayer.kill('SIGTERM');
    await once(delayer, 'exit');
  }
}

/**
 * The round trip from `from`'s namespace to `to`'s address on `net`, in ms: a TCP connection
 * attempt to a closed port (SYN out, RST back), as ping would measure it.
 */
export function roundTripMs(hosts: NetHosts, from: string, to: string, net: Net): number {
  const ip = net === 'r' ? hosts.host(to).replIp : hosts.host(to).mgmtIp;
  const script = [
    'import socket, time',
    't = time.monotonic()',
    's = socket.socket()',
    's.settimeout(5)',
    'try:',
    `    s.connect((${JSON.stringify(ip)}, 1))`,
    'except OSError:',
    '    pass',
    'print((time.monotonic() - t) * 1000)',
  ].join('\n');
  return Number(hosts.exec(from, 'python3', ['-c', script]).trim());
}
