/**
 * Network faults on the test hosts (worker/netns.ts): a partition of a node from one of its networks
 * (nftables inside the node's namespace) and a bandwidth cap on its link (tbf; this kernel has no
 * netem for added latency).
 */
import { execFileSync } from 'node:child_process';
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
