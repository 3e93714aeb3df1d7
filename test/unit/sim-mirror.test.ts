/**
 * The hardware document beside the QEMU driver (adapters/sim/mirror.ts): what the driver reports to
 * the simulated storage lands in the node's process table, a real migration keeps its times across
 * observations and is never advanced by the simulator, unchanged observations need no write; and
 * the node's facts the driver reads (`SimNodeHost`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import type { MirrorEdit, MirrorLogEntry, ObservedProcess } from '../../domain/ports.js';
import { buildHardware, defaultClusterConfig } from '../../adapters/sim/cluster.js';
import { SimHardware } from '../../adapters/sim/hardware.js';
import { recordObserved, SimNodeHost, wouldChange } from '../../adapters/sim/mirror.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** One node's side of the document: what the simulated storage does with the driver's reports. */
const recorder = (hw: SimHardware, node: string) => ({
  apply: (edits: MirrorEdit[], log?: MirrorLogEntry) => recordObserved(hw, node, { edits, ...(log ? { log } : {}) }),
  wouldChange: (edits: MirrorEdit[]) => wouldChange(hw, node, edits),
});

async function mirror(node = 'node1'): Promise<{ hw: SimHardware; m: ReturnType<typeof recorder> }> {
  const dir = mkdtempSync(join(tmpdir(), 'gt-mirror-'));
  dirs.push(dir);
  const hw = SimHardware.forHome(dir);
  await hw.replace(buildHardware(defaultClusterConfig('test')));
  return { hw, m: recorder(hw, node) };
}

const running: ObservedProcess = { state: 'running', memory: 128, vcpus: 2, runtime: '{}' };
const migrating = (status: NonNullable<ObservedProcess['migration']>['status']): ObservedProcess => ({
  state: status === 'completed' ? 'paused' : 'running',
  ...(status === 'completed' ? { pausedBy: 'postmigrate' as const } : {}),
  memory: 128,
  vcpus: 2,
  runtime: '{}',
  migration: { targetNode: 'node2', targetIp: '198.51.100.12', port: 8102, live: true, status },
});

test('the node host carries the facts the driver reads: power, memory, secondary IP, port pool', async () => {
  const { hw } = await mirror();
  const s = hw.read().state;
  expect(new SimNodeHost(hw, 'node1').facts()).toEqual({
    powered: true,
    memoryTotal: s.nodes.node1!.memoryTotal,
    dom0Memory: s.params.dom0Memory,
    secondaryIp: s.nodes.node1!.secondaryIp,
    migrationBasePort: s.params.migrationBasePort,
  });
  expect(new SimNodeHost(hw, 'node9').facts()).toBeNull();
  expect(new SimNodeHost(hw, 'node1').exists()).toBe(true);
});

test('an unchanged read-only observation records nothing, not even its log entry', async () => {
  const { hw, m } = await mirror();
  const edits = [{ kind: 'process' as const, instance: 'vm9', process: running }];
  await m.apply(edits);
  const seq = hw.read().state.logSeq;
  await recordObserved(hw, 'node1', { edits, log: { rpc: 'instance_info', instance: 'vm9', outcome: 'ok' }, unlessUnchanged: true });
  expect(hw.read().state.logSeq).toBe(seq);
  await recordObserved(hw, 'node1', {
    edits: [{ kind: 'keep-only', instances: [] }],
    log: { rpc: 'instance_list', outcome: 'ok' },
    unlessUnchanged: true,
  });
  expect(hw.read().state.logSeq).toBe(seq + 1);
  expect(hw.read().state.nodes.node1!.processes.vm9).toBeUndefined();
});

test('an observed process and the RPC log entry are written together; the same observation changes nothing', async () => {
  const { hw, m } = await mirror();
  const edits = [{ kind: 'process' as const, instance: 'vm9', process: running }];
  expect(m.wouldChange(edits)).toBe(true);
  await m.apply(edits, { rpc: 'instance_start', instance: 'vm9', outcome: 'ok' });
  const s = hw.read().state;
  expect(s.nodes.node1!.processes.vm9).toEqual({ state: 'running', memory: 128, vcpus: 2, runtime: '{}', dirtyRate: 0 });
  expect(s.log.at(-1)).toMatchObject({ node: 'node1', rpc: 'instance_start', instance: 'vm9', outcome: 'ok' });
  expect(m.wouldChange(edits)).toBe(false);
  expect(m.wouldChange([])).toBe(false);
});

test('a real migration keeps its start time, gets an end time once, and the simulator never completes it', async () => {
  const { hw, m } = await mirror();
  // The destination's driver mirrors its incoming process (the simulator fails a migration without one).
  const incoming: ObservedProcess = { state: 'incoming', memory: 128, vcpus: 2, runtime: '{}', incoming: { port: 8102 } };
  await recorder(hw, 'node2').apply([{ kind: 'process', instance: 'vm9', process: incoming }]);
  await m.apply([{ kind: 'process', instance: 'vm9', process: migrating('active') }]);
  const started = hw.read().state.nodes.node1!.processes.vm9!.migration!;
  expect(started).toMatchObject({ status: 'active', bandwidth: 0, dirtyRate: 0, ram: 128 });
  await new Promise((r) => setTimeout(r, 20));
  expect(hw.read().state.nodes.node1!.processes.vm9!.migration!.status).toBe('active');
  await m.apply([{ kind: 'process', instance: 'vm9', process: migrating('active') }]);
  expect(hw.read().state.nodes.node1!.processes.vm9!.migration!.startedAt).toBe(started.startedAt);
  await m.apply([{ kind: 'process', instance: 'vm9', process: migrating('completed') }]);
  const done = hw.read().state.nodes.node1!.processes.vm9!;
  expect(done).toMatchObject({
    state: 'paused',
    pausedBy: 'postmigrate',
    migration: { status: 'completed', startedAt: started.startedAt },
  });
  expect(m.wouldChange([{ kind: 'process', instance: 'vm9', process: migrating('completed') }])).toBe(false); // endedAt kept
});

test('links, removal and keep-only edit the node table; nothing is written for a node the document lacks', async () => {
  const { hw, m } = await mirror();
  await m.apply([
    { kind: 'process', instance: 'vm8', process: running },
    { kind: 'process', instance: 'vm9', process: running },
    { kind: 'links', instance: 'vm9', present: true },
  ]);
  await m.apply([{ kind: 'keep-only', instances: ['vm9'] }]);
  let n = hw.read().state.nodes.node1!;
  expect(n.processes.vm8).toBeUndefined();
  expect(n.processes.vm9).toBeDefined();
  expect(n.links.vm9).toBe(true);
  await m.apply([
    { kind: 'process', instance: 'vm9', process: null },
    { kind: 'links', instance: 'vm9', present: false },
  ]);
  n = hw.read().state.nodes.node1!;
  expect(n.processes.vm9).toBeUndefined();
  expect(n.links.vm9).toBeUndefined();
  const ghost = recorder(hw, 'node9');
  expect(ghost.wouldChange([{ kind: 'process', instance: 'vm9', process: running }])).toBe(false);
  await ghost.apply([{ kind: 'process', instance: 'vm9', process: running }], { rpc: 'instance_info', outcome: 'error', error: 'x' });
  expect(hw.read().state.log.at(-1)).toMatchObject({ node: 'node9', rpc: 'instance_info', outcome: 'error' });
});
