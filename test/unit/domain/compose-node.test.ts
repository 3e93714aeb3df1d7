/**
 * composeNode (domain/compose-node.ts): a node's RPC surface is its hypervisor port and its storage
 * port; each RPC runs on the side that owns it, and the hypervisor's own accessors stay reachable.
 * (The simulated and QEMU sides composed for real: test/unit/compose-node.test.ts.)
 */
import { describe, expect, test } from 'vitest';
import { composeNode, STORAGE_RPCS } from '../../../domain/compose-node.js';
import type { NodeHypervisor, NodeStorage } from '../../../domain/ports.js';

/** A side whose every method records its name and answers it. */
function recording<T extends object>(node: string, calls: string[], extra: object = {}): T {
  return new Proxy({ node, ...extra } as T, {
    get(t, p) {
      if (p in t) return Reflect.get(t, p) as unknown;
      return (..._a: unknown[]) => {
        calls.push(String(p));
        return Promise.resolve(String(p));
      };
    },
  });
}

describe('composeNode', () => {
  test('storage RPCs go to the storage port, everything else to the hypervisor port', async () => {
    const calls: string[] = [];
    class Hv {
      readonly node = 'node1';
      private readonly secret = 'mine';
      nodeInfo() {
        calls.push(`hv:nodeInfo:${this.secret}`); // `this` is the hypervisor itself
        return Promise.resolve('nodeInfo');
      }
      own(): string {
        return this.secret;
      }
    }
    const hv = new Hv() as unknown as NodeHypervisor & { own(): string };
    const storage = recording<NodeStorage>('node1', calls);
    const node = composeNode(hv, storage);
    expect(node.node).toBe('node1');
    await node.nodeInfo();
    expect(node.own()).toBe('mine');
    for (const rpc of STORAGE_RPCS) await (node[rpc] as () => Promise<unknown>)();
    expect(calls).toEqual(['hv:nodeInfo:mine', ...STORAGE_RPCS]);
    expect('blockdevClose' in node).toBe(true);
    expect('instanceWaitMigrationEvent' in node).toBe(false); // optional: present only if the hypervisor has it
  });

  test('the two sides must be of the same node', () => {
    const calls: string[] = [];
    expect(() => composeNode(recording<NodeHypervisor>('node1', calls), recording<NodeStorage>('node2', calls))).toThrow(
      'cannot compose the hypervisor of node1 with the storage of node2',
    );
  });
});
