/**
 * What of the configuration leaves the configuration store: the DRBD secrets stay behind. No node
 * RPC carries them (domain/instance.ts `rpcInstanceFor` sends minors, peer and port), so the
 * snapshot an operation starts from and the instances the configuration activities return — all
 * recorded in the workflow's history — hold none, neither of the operated instance nor of any other.
 */
import type { ClusterSnapshot, Disk, Instance } from './types.js';

function diskWithoutSecret(d: Disk): Disk {
  if (!d.drbd) return d;
  const { secret: _secret, ...drbd } = d.drbd;
  return { ...d, drbd };
}

export function instanceWithoutSecrets(inst: Instance): Instance {
  return { ...inst, disks: inst.disks.map(diskWithoutSecret) };
}

export function snapshotWithoutSecrets(snap: ClusterSnapshot): ClusterSnapshot {
  return { ...snap, instances: Object.fromEntries(Object.entries(snap.instances).map(([n, i]) => [n, instanceWithoutSecrets(i)])) };
}
