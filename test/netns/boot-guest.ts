/**
 * Boots an instance's guest with the QEMU driver from inside a node's network namespace (run there by
 * test/netns/hosts.test.ts with `ip netns exec`), so that the guest's QEMU belongs to that host's
 * network, as one started by the node's agent would. Arguments: home, node, kernel, the RpcInstance as JSON.
 */
import type { RpcInstance } from '../../domain/instance.js';
import { qemuNode } from '../../worker/backends.js';

const [home, node, kernel, instJson] = process.argv.slice(2);
if (!home || !node || !kernel || !instJson) throw new Error('usage: boot-guest <home> <node> <kernel> <instance json>');
const inst = JSON.parse(instJson) as RpcInstance;
await qemuNode({ home, node, kernel, accel: 'tcg', watchMs: 0 }).instanceStart(inst, 'test boot');
console.log(`booted ${inst.name} on ${node}`);
