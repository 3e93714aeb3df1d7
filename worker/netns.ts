/**
 * Nodes as network hosts on this machine (issue 15; used by the tests and by `npm start -- --hosts
 * netns`): one network namespace per node, each with two links, as a Ganeti node has two networks:
 * - the management network (`m`): the node agent reaches Temporal over it; the root namespace holds
 *   the bridge's first address, where `forward` relays to a server on loopback (the dev server);
 * - the replication network (`r`): the node's secondary IP, where QEMU listens for and sends the
 *   migration stream, so the stream crosses the veth links.
 * Each namespace has a veth pair per network, its root end on that network's bridge. Nothing but
 * addresses of these namespaces is used: two private /24 networks (picked at random among unused
 * ones for a test). Every link, bridge and namespace carries the hosts' id; `teardown()` removes
 * them. A test's id holds its pid, so the next run removes what a killed run left behind.
 * Needs root (CAP_NET_ADMIN) and iproute2 (`ip`); the tests' partitions use nftables (`nft`).
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';

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

/** The prefix of a test run's hosts: `gtn<pid>`. */
const TEST_PREFIX = 'gtn';

export interface NetHostsOptions {
  /** Prefix of every name (at most 10 characters: link names have 15); default `gtn<pid>`. */
  id?: string;
  /** The management and replication networks' first three octets (default: two unused ones at random). */
  networks?: { m: string; r: string };
  /** Hosts of this id that exist already are kept (their namespaces may hold running guests). */
  reuse?: boolean;
}
function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
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
    const m = new RegExp(`^${TEST_PREFIX}(\\d+)-`).exec(n);
    if (m && !alive(Number(m[1]))) tryIp('netns', 'del', n);
  }
  for (const l of ip('-o', 'link', 'show').split('\n')) {
    const m = new RegExp(`^\\d+: (${TEST_PREFIX}(\\d+)[a-z0-9]*)[@:]`).exec(l);
    if (m && !alive(Number(m[2]))) tryIp('link', 'del', m[1]!);
  }
}

/** Two /24 networks of 10.0.0.0/8 that no interface here uses. */
function freeNetworks(): Record<Net, string> {
  const used = ip('-o', '-4', 'addr', 'show');
  for (let tries = 0; tries < 100; tries++) {
    const a = 64 + Math.floor(Math.random() * 128);
    const b = Math.floor(Math.random() * 254);
    const nets = { m: `10.${a}.${b}`, r: `10.${a}.${(b + 1) % 255}` };
    if ([nets.m, nets.r].every((n) => !used.includes(` ${n}.`))) return nets;
  }
  throw new Error('no free private /24 networks for the test hosts');
}

export class NetHosts {
  readonly hosts = new Map<string, Host>();
  /** The root namespace's address on the management network (the dev server listens here). */
  readonly gateway: string;
  readonly id: string;
  private readonly bridges: Record<Net, string>;
  private torndown = false;
  private readonly relays: Array<{ server: Server; sockets: Set<Socket> }> = [];

  private constructor(
    nodes: string[],
    private readonly nets: Record<Net, string>,
    id: string,
    reuse: boolean,
  ) {
    this.id = id;
    this.bridges = { m: `${this.id}bm`, r: `${this.id}br` };
    this.gateway = `${nets.m}.1`;
    try {
      for (const net of ['m', 'r'] as const) {
        if (reuse && linkExists(this.bridges[net])) continue;
        ip('link', 'add', this.bridges[net], 'type', 'bridge');
        ip('addr', 'add', `${nets[net]}.1/24`, 'dev', this.bridges[net]);
        ip('link', 'set', this.bridges[net], 'up');
      }
      nodes.forEach((node, i) => this.addHost(node, i, reuse));
    } catch (e) {
      if (!reuse) this.teardown();
      throw e;
    }
  }

  /** Namespaces for `nodes`, in this order (node i has the addresses `.11+i`); needs root. */
  static create(nodes: string[], o: NetHostsOptions = {}): NetHosts {
    const why = netnsUnavailable();
    if (why) throw new Error(`cannot create network namespaces: ${why}`);
    sweepStale();
    const id = o.id ?? `${TEST_PREFIX}${process.pid}`;
    if (id.length > 10) throw new Error(`host id ${id} is longer than 10 characters`);
    if (o.networks) {
      const used = ip('-o', '-4', 'addr', 'show');
      for (const n of [o.networks.m, o.networks.r]) {
        const taken = used.split('\n').find((l) => l.includes(` ${n}.`) && !l.includes(` ${id}`));
        if (taken) throw new Error(`the network ${n}.0/24 is in use here: ${taken.trim()}`);
      }
    }
    const nets = o.networks ?? freeNetworks();
    return new NetHosts(nodes, nets, id, o.reuse ?? false);
  }

  private addHost(node: string, i: number, reuse: boolean): void {
    const ns = `${this.id}-${node}`;
    const host: Host = {
      node,
      ns,
      mgmtIp: `${this.nets.m}.${11 + i}`,
      replIp: `${this.nets.r}.${11 + i}`,
      link: { m: `${this.id}m${i}`, r: `${this.id}r${i}` },
    };
    this.hosts.set(node, host);
    if (reuse && existsSync(`/run/netns/${ns}`) && linkExists(host.link.m) && linkExists(host.link.r)) return;
    ip('netns', 'add', ns);
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

  /** Stops relaying (the hosts stay). */
  closeRelays(): void {
    for (const r of this.relays.splice(0)) {
      r.server.close();
      for (const s of r.sockets) s.destroy();
    }
  }

  /** The pids of the processes in the node's namespace. */
  pids(node: string): number[] {
    return ip('netns', 'pids', this.host(node).ns).split('\n').filter(Boolean).map(Number);
  }

  /** Removes every namespace, link and bridge of these hosts (idempotent; processes inside are the caller's). */
  teardown(): void {
    if (this.torndown) return;
    this.torndown = true;
    this.closeRelays();
    for (const h of this.hosts.values()) {
      for (const net of ['m', 'r'] as const) tryIp('link', 'del', h.link[net]);
      tryIp('netns', 'del', h.ns);
    }
    for (const net of ['m', 'r'] as const) tryIp('link', 'del', this.bridges[net]);
  }
}

/** Whether this machine can create the hosts (root, iproute2, netns support), and why not. */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root (CAP_NET_ADMIN is needed)';
  try {
    ip('netns', 'list');
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
