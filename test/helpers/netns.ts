/**
 * Nodes as network hosts on this machine (issue 15): one network namespace per node, each with two
 * links, as a Ganeti node has two networks:
 * - the management network (`m`): the node agent reaches Temporal over it; the root namespace holds
 *   the bridge's first address, where `forward` relays to a server on loopback (the dev server);
 * - the replication network (`r`): the node's secondary IP, where QEMU listens for and sends the
 *   migration stream, so the stream crosses the veth links.
 * Each namespace has a veth pair per network, its root end on that network's bridge. Nothing but
 * addresses of these namespaces is used: two private /24 networks picked at random among unused
 * ones. Every link, bridge, namespace and firewall table carries the run's prefix and is removed by
 * `teardown()`, and by the next run if this process died before (namespaces whose pid is gone).
 * Needs root (CAP_NET_ADMIN) and iproute2; partitions use nftables (installed on demand).
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { ensureCommand } from './system-packages.js';

export type Net = 'm' | 'r';

export interface Host {
  node: string;
  /** The namespace's name (`ip netns exec <ns> …`). */
  ns: string;
  /** The node's address on the management network. */
  mgmtIp: string;
  /** The node's address on the replication network: its secondary IP. */
  replIp: string;
  /** The root end of the node's veth pair on each network (where a partition or a cap applies). */
  link: Record<Net, string>;
}

const PREFIX = 'gtn';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // already gone
  }
}

/** Namespaces and links of earlier runs whose process is gone (a SIGKILLed test file). */
function sweepStale(): void {
  const alive = (pid: number) => existsSync(`/proc/${pid}`);
  let names: string[];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^gtn(\d+)-/.exec(n);
    if (m && !alive(Number(m[1]))) tryIp('netns', 'del', n);
  }
  for (const l of ip('-o', 'link', 'show').split('\n')) {
    const m = /^\d+: (gtn(\d+)[a-z0-9]*)[@:]/.exec(l);
    if (m && !alive(Number(m[2]))) tryIp('link', 'del', m[1]!);
  }
}

/** Two /24 networks of 10.0.0.0/8 that no interface here uses. */
function freeNetworks(): [string, string] {
  const used = ip('-o', '-4', 'addr', 'show');
  for (let tries = 0; tries < 100; tries++) {
    const a = 64 + Math.floor(Math.random() * 128);
    const b = Math.floor(Math.random() * 254);
    const nets: [string, string] = [`10.${a}.${b}`, `10.${a}.${(b + 1) % 255}`];
    if (nets.every((n) => !used.includes(` ${n}.`))) return nets;
  }
  throw new Error('no free private /24 networks for the test hosts');
}

export class NetHosts {
  readonly hosts = new Map<string, Host>();
  /** The root namespace's address on the management network (the dev server listens here). */
  readonly gateway: string;
  private readonly id: string;
  private readonly bridges: Record<Net, string>;
  private torndown = false;
  private readonly relays: Array<{ server: Server; sockets: Set<Socket> }> = [];

  private constructor(
    nodes: string[],
    private readonly nets: Record<Net, string>,
  ) {
    this.id = `${PREFIX}${process.pid}`;
    this.bridges = { m: `${this.id}bm`, r: `${this.id}br` };
    this.gateway = `${nets.m}.1`;
    try {
      for (const net of ['m', 'r'] as const) {
        ip('link', 'add', this.bridges[net], 'type', 'bridge');
        ip('addr', 'add', `${nets[net]}.1/24`, 'dev', this.bridges[net]);
        ip('link', 'set', this.bridges[net], 'up');
      }
      nodes.forEach((node, i) => this.addHost(node, i));
    } catch (e) {
      this.teardown();
      throw e;
    }
  }

  /** Namespaces for `nodes` (torn down on failure); needs root. */
  static create(nodes: string[]): NetHosts {
    if (process.getuid?.() !== 0) throw new Error('network namespaces need root (CAP_NET_ADMIN)');
    ensureCommand('ip', 'iproute2');
    sweepStale();
    const [m, r] = freeNetworks();
    return new NetHosts(nodes, { m, r });
  }

  private addHost(node: string, i: number): void {
    const ns = `${this.id}-${node}`;
    const host: Host = {
      node,
      ns,
      mgmtIp: `${this.nets.m}.${11 + i}`,
      replIp: `${this.nets.r}.${11 + i}`,
      link: { m: `${this.id}m${i}`, r: `${this.id}r${i}` },
    };
    ip('netns', 'add', ns);
    this.hosts.set(node, host);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    for (const net of ['m', 'r'] as const) {
      const inner = `${host.link[net]}i`;
      ip('link', 'add', host.link[net], 'type', 'veth', 'peer', 'name', inner);
      ip('link', 'set', inner, 'netns', ns);
      ip('link', 'set', host.link[net], 'master', this.bridges[net]);
      ip('link', 'set', host.link[net], 'up');
      ip('-n', ns, 'addr', 'add', `${net === 'm' ? host.mgmtIp : host.replIp}/24`, 'dev', inner);
      ip('-n', ns, 'link', 'set', inner, 'up');
    }
  }

  host(node: string): Host {
    const h = this.hosts.get(node);
    if (!h) throw new Error(`no host for ${node}`);
    return h;
  }

  /** `command args…` inside the node's namespace. */
  spawn(node: string, command: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.host(node).ns, command, ...args], opts);
  }

  /** `command args…` inside the node's namespace, to completion; returns its output. */
  exec(node: string, command: string, args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.host(node).ns, command, ...args], { encoding: 'utf8' });
  }

  /**
   * Cuts the node off `net`: every packet from or to the node's address on it is refused (TCP with
   * a reset, everything else dropped), as a firewall or a dead switch port the kernel reports. On
   * the management network the agent's connection to Temporal is held instead of reset (dropped
   * silently), as a cable pulled: it resumes when the link returns.
   */
  partition(node: string, net: Net): void {
    const h = this.host(node);
    ensureCommand('nft', 'nftables');
    const table = `${this.id}${net}`;
    const iface = `${h.link[net]}i`;
    const verdict = net === 'r' ? 'reject with tcp reset' : 'drop';
    const rules = [
      `table inet ${table} {`,
      `  chain in { type filter hook input priority 0; policy accept; iifname "${iface}" meta l4proto tcp ${verdict}; iifname "${iface}" drop; }`,
      // The resets the input chain sends go out through the output chain: let them pass.
      `  chain out { type filter hook output priority 0; policy accept; oifname "${iface}" tcp flags & rst == rst ${net === 'r' ? 'accept' : 'drop'}; oifname "${iface}" meta l4proto tcp ${verdict}; oifname "${iface}" drop; }`,
      '}',
    ].join('\n');
    execFileSync('ip', ['netns', 'exec', h.ns, 'nft', '-f', '-'], { input: rules });
  }

  /** Ends a partition of the node on `net`. */
  heal(node: string, net: Net): void {
    try {
      execFileSync('ip', ['netns', 'exec', this.host(node).ns, 'nft', 'delete', 'table', 'inet', `${this.id}${net}`], { stdio: 'ignore' });
    } catch {
      // no partition
    }
  }

  /** Caps the traffic towards the node on `net` at `mbit` Mbit/s (a token bucket on the root end). */
  capBandwidth(node: string, net: Net, mbit: number): void {
    const link = this.host(node).link[net];
    execFileSync('tc', ['qdisc', 'replace', 'dev', link, 'root', 'tbf', 'rate', `${mbit}mbit`, 'burst', '64kb', 'latency', '400ms']);
  }

  uncap(node: string, net: Net): void {
    try {
      execFileSync('tc', ['qdisc', 'del', 'dev', this.host(node).link[net], 'root'], { stdio: 'ignore' });
    } catch {
      // no cap
    }
  }

  /** Bytes the node received on `net` (what its root-end link sent towards it). */
  receivedBytes(node: string, net: Net): number {
    return Number(readFileSync(`/sys/class/net/${this.host(node).link[net]}/statistics/tx_bytes`, 'utf8'));
  }

  /**
   * Relays TCP connections to `gateway:<port>` (from the hosts) to `127.0.0.1:<port>` (a server on
   * this machine's loopback, such as the dev server); returns the address the hosts use.
   */
  async forward(port: number): Promise<string> {
    const sockets = new Set<Socket>();
    const server = createServer((inbound) => {
      const outbound = connect(port, '127.0.0.1');
      for (const s of [inbound, outbound]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.gateway, resolve);
    });
    this.relays.push({ server, sockets });
    return `${this.gateway}:${port}`;
  }

  /** Removes every namespace, link and bridge of this run (idempotent; processes inside are the caller's). */
  teardown(): void {
    if (this.torndown) return;
    this.torndown = true;
    for (const r of this.relays) {
      r.server.close();
      for (const s of r.sockets) s.destroy();
    }
    for (const h of this.hosts.values()) {
      for (const net of ['m', 'r'] as const) tryIp('link', 'del', h.link[net]);
      tryIp('netns', 'del', h.ns);
    }
    for (const net of ['m', 'r'] as const) tryIp('link', 'del', this.bridges[net]);
  }
}

/** Whether this machine can create the hosts (root, iproute2, netns support), and why not. */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  try {
    ip('netns', 'list');
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
