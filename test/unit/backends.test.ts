/**
 * The fault-injection decorator is on the simulated node's path always, on the qemu backend's path
 * only when asked for (`faultInjection`, GANETI_TEMPORAL_FAULT_INJECTION=1): a production qemu agent
 * never consults, consumes or logs the fault table.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { buildHardware, defaultClusterConfig } from '../../adapters/sim/cluster.js';
import { addFault } from '../../adapters/sim/faults.js';
import { SimHardware } from '../../adapters/sim/hardware.js';
import { faultInjectionFromEnv, qemuBackend, simBackend } from '../../worker/backends.js';

const homes: string[] = [];
afterEach(() => {
  for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
});

async function clusterWithFault(): Promise<{ home: string; hw: SimHardware }> {
  const home = mkdtempSync(join(tmpdir(), 'backends-test-'));
  homes.push(home);
  const hw = SimHardware.forHome(home);
  await hw.replace(buildHardware(defaultClusterConfig('faults'), {}));
  await hw.mutate((s) => addFault(s, { rpc: 'instance_list', node: 'node1', mode: 'permanent' }));
  return { home, hw };
}

const faultsLeft = (hw: SimHardware) => hw.read().state.faults.length;

test('a qemu agent on the production path never consults the fault table', async () => {
  const { home, hw } = await clusterWithFault();
  const rpc = qemuBackend({ home, node: 'node1', kernel: null });
  await expect(rpc.instanceList()).resolves.toEqual([]);
  expect(faultsLeft(hw)).toBe(1); // not consumed
  expect(hw.read().state.log.some((e) => e.outcome === 'fault')).toBe(false);
});

test('a qemu agent with fault injection asked for answers the fault table', async () => {
  const { home, hw } = await clusterWithFault();
  const rpc = qemuBackend({ home, node: 'node1', kernel: null, faultInjection: true });
  await expect(rpc.instanceList()).rejects.toThrow('injected failure in instance_list on node1');
  expect(hw.read().state.log.some((e) => e.outcome === 'fault' && e.rpc === 'instance_list')).toBe(true);
});

test('the simulated node always answers the fault table', async () => {
  const { home } = await clusterWithFault();
  await expect(simBackend(home, 'node1').instanceList()).rejects.toThrow('injected failure in instance_list on node1');
});

test('GANETI_TEMPORAL_FAULT_INJECTION=1, and only 1, turns fault injection on', () => {
  expect(faultInjectionFromEnv({})).toBe(false);
  expect(faultInjectionFromEnv({ GANETI_TEMPORAL_FAULT_INJECTION: '0' })).toBe(false);
  expect(faultInjectionFromEnv({ GANETI_TEMPORAL_FAULT_INJECTION: 'yes' })).toBe(false);
  expect(faultInjectionFromEnv({ GANETI_TEMPORAL_FAULT_INJECTION: '1' })).toBe(true);
});
