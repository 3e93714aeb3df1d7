/**
 * Bringing a cluster's real processes in line with its configuration when the qemu backend starts:
 * every instance marked up runs on its primary (as Ganeti's watcher would restart it). Instances
 * already running are re-attached, not restarted.
 */
import { createServer } from 'node:net';
import { rpcInstanceFor } from '../../domain/instance.js';
import type { ClusterConfig } from '../../domain/types.js';
import type { QemuHypervisor } from './node.js';

export interface BootReport {
  started: string[];
  running: string[];
  failed: Array<{ instance: string; error: string }>;
}

/** `newDriver` makes the driver of a node (once per node; without a watch, `watchMs: 0`); each is closed at the end. */
export async function bootInstances(cfg: ClusterConfig, newDriver: (node: string) => QemuHypervisor): Promise<BootReport> {
  const report: BootReport = { started: [], running: [], failed: [] };
  const drivers = new Map<string, QemuHypervisor>();
  const driver = (node: string) => {
    let d = drivers.get(node);
    if (!d) drivers.set(node, (d = newDriver(node)));
    return d;
  };
  try {
    for (const inst of Object.values(cfg.instances).sort((a, b) => a.name.localeCompare(b.name))) {
      if (inst.adminState !== 'up' || inst.forthcoming || cfg.nodes[inst.primaryNode]?.offline) continue;
      const d = driver(inst.primaryNode);
      const rpc = rpcInstanceFor(cfg, inst, inst.primaryNode);
      try {
        const info = await d.instanceInfo(rpc);
        if (info && info.state !== 'incoming') {
          report.running.push(inst.name);
          continue;
        }
        await d.instanceStart(rpc, 'qemu backend start: instance is marked up');
        report.started.push(inst.name);
      } catch (e) {
        report.failed.push({ instance: inst.name, error: (e as Error).message });
      }
    }
    // instance_list reports what runs: a record of a process that does not (e.g. a freshly built document) goes.
    for (const node of Object.keys(cfg.nodes))
      if (!cfg.nodes[node]!.offline)
        await driver(node)
          .instanceList()
          .catch(() => undefined);
  } finally {
    for (const d of drivers.values()) d.close();
  }
  return report;
}

/** Secondary IPs QEMU could not listen on here (not an address of this machine). */
export async function unusableSecondaryIps(cfg: ClusterConfig): Promise<string[]> {
  const out: string[] = [];
  for (const n of Object.values(cfg.nodes)) {
    if (!(await bindable(n.secondaryIp))) out.push(`${n.name}: ${n.secondaryIp}`);
  }
  return out;
}

function bindable(ip: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => resolve(e.code !== 'EADDRNOTAVAIL'));
    srv.listen({ host: ip, port: 0 }, () => srv.close(() => resolve(true)));
  });
}
