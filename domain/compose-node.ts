/**
 * A node's RPC surface composed of its two sides (domain/ports.ts): the hypervisor port answers node
 * information, instance_* and the migration RPCs; the storage port answers the block-device, DRBD and
 * bridge RPCs. Composed per node in the worker wiring (worker/backends.ts), for every backend.
 */
import type { NodeHypervisor, NodeStorage, NodeStorageMethod } from './ports.js';

/** The storage side's RPCs, each answered by the storage port. */
export const STORAGE_RPCS = [
  'bridgesExist',
  'blockdevFind',
  'blockdevClose',
  'blockdevOpen',
  'blockdevShutdown',
  'blockdevAssemble',
  'drbdDisconnectNet',
  'drbdAttachNet',
  'drbdWaitSync',
] as const satisfies readonly NodeStorageMethod[];

/** Every storage RPC is listed: a new one in NodeStorage without an entry above does not compile. */
type NothingMissing<T extends never> = T;
export type AllStorageRpcsListed = NothingMissing<Exclude<NodeStorageMethod, (typeof STORAGE_RPCS)[number]>>;

type Fn = (...a: unknown[]) => unknown;

/**
 * The node `hypervisor` and `storage` make together (both for the same node). Everything else the
 * hypervisor object offers (a driver's own accessors, its optional event wait) stays reachable; each
 * method runs on the side that owns it.
 */
export function composeNode<H extends NodeHypervisor>(hypervisor: H, storage: NodeStorage): H & NodeStorage {
  if (hypervisor.node !== storage.node) {
    throw new Error(`cannot compose the hypervisor of ${hypervisor.node} with the storage of ${storage.node}`);
  }
  const storageRpcs = new Set<PropertyKey>(STORAGE_RPCS);
  return new Proxy(hypervisor, {
    get(target, prop) {
      const side: object = storageRpcs.has(prop) ? storage : target;
      const v = Reflect.get(side, prop) as unknown;
      return typeof v === 'function' ? (v as Fn).bind(side) : v;
    },
    has(target, prop) {
      return storageRpcs.has(prop) || Reflect.has(target, prop);
    },
  }) as H & NodeStorage;
}
