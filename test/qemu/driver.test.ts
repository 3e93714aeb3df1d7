/**
 * The QEMU node driver (adapters/qemu/node.ts) on its own, without Temporal: each RPC against real
 * processes, its idempotency, re-attaching from a fresh driver object (what a restarted node agent
 * is), the identity check against pid reuse, what it reports to the simulated storage (the hardware
 * document), the storage side asking it who holds a disk open, and the driver on a host of its own
 * without the simulator's document.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { rpcInstanceFor, type RpcInstance } from '../../domain/instance.js';
import { NodeRpcError } from '../../domain/ports.js';
import { parseXp, readHeartbeat } from '../../adapters/qemu/guest.js';
import { QemuHypervisor, type QemuNode } from '../../adapters/qemu/node.js';
import { pidAlive } from '../../adapters/qemu/process.js';
import { withQmp } from '../../adapters/qemu/qmp.js';
import { ganetiStatus } from '../../adapters/qemu/status.js';
import { setPower } from '../../adapters/sim/cluster.js';
import type { TestCluster } from '../helpers/cluster.js';
import { TEST_GUEST, TEST_MEMORY, useDriverFixture } from './qemu-harness.js';

/** Polls `cond` until it holds (true) or `ms` pass (false): a slow machine is waited for, never a fixed pause. */
async function within(ms: number, cond: () => boolean | Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** The guest's heartbeat page says it booted, within `ms`. */
const bootedWithin = (qmpPath: string, ms: number) =>
  within(ms, async () => (await readHeartbeat(qmpPath).catch(() => ({ booted: false }))).booted);

const fx = useDriverFixture(TEST_GUEST, 21);
const cluster = () => fx.cluster();
const driver = fx.driver;

const ri = (c: TestCluster, node: string, instance = 'web1'): RpcInstance => rpcInstanceFor(c.cfg(), c.instance(instance), node);

/** Polls the source's migration status (each poll waits a little for QEMU's event) until it ends. */
async function migrationEnd(c: TestCluster, n1: QemuNode) {
  let st = await n1.instanceGetMigrationStatus(ri(c, 'node1'));
  for (let k = 0; (st.status === 'active' || st.status === 'setup') && k < 200; k++)
    st = await n1.instanceGetMigrationStatus(ri(c, 'node1'));
  return st;
}

async function rejects(p: Promise<unknown>): Promise<NodeRpcError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(NodeRpcError);
    return e as NodeRpcError;
  }
  throw new Error('expected the RPC to fail');
}

/** DRBD dual-primary so that the target may open the disk (what the workflow does before accept). */
async function dualPrimary(c: TestCluster, a: QemuNode, b: QemuNode): Promise<void> {
  await Promise.all([a.drbdDisconnectNet(ri(c, a.node)), b.drbdDisconnectNet(ri(c, b.node))]);
  await Promise.all([a.drbdAttachNet(ri(c, a.node), true), b.drbdAttachNet(ri(c, b.node), true)]);
  await a.blockdevOpen(ri(c, a.node), false);
  await b.blockdevOpen(ri(c, b.node), false);
}

test('QEMU states map to Ganeti migration statuses; the heartbeat parser reads HMP xp', () => {
  expect(
    ['setup', 'active', 'pre-switchover', 'device', 'postcopy-active', 'completed', 'failed', 'cancelling', 'cancelled', undefined].map(
      ganetiStatus,
    ),
  ).toEqual(['setup', 'active', 'active', 'active', 'postcopy-active', 'completed', 'failed', 'cancelled', 'cancelled', 'none']);
  expect(parseXp('00000000001f0000: 0x00000011 0xc0ffee00\r\n')).toEqual({ counter: 17, booted: true });
});

describe('start, information, balloon, shutdown', () => {
  test('a start runs one real process that a fresh driver re-attaches to; a soft shutdown powers the guest off', async () => {
    const c = await cluster();
    const n1 = driver(c, 'node1');
    await n1.instanceStart(ri(c, 'node1'), 'test');
    const pid = n1.readMeta('web1')!.pid!;
    expect(pidAlive(pid)).toBe(true);
    await n1.instanceStart(ri(c, 'node1'), 'again'); // already running: nothing new
    expect(n1.readMeta('web1')!.pid).toBe(pid);
    expect(await n1.instanceList()).toEqual(['web1']);
    const info = await n1.nodeInfo();
    expect(info.hvVersion).toMatch(/^\d+\.\d+\.\d+$/);
    expect(info.memoryFree).toBe(16384 - 1024 - TEST_MEMORY);
    expect(await bootedWithin(n1.qmpPath('web1'), 20_000)).toBe(true);

    // What a restarted node agent does: a new driver, nothing in memory, the same process.
    const again = driver(c, 'node1');
    expect(await again.instanceInfo(ri(c, 'node1'))).toEqual({ state: 'running', memory: TEST_MEMORY, vcpus: 2 });
    expect(again.readMeta('web1')!.pid).toBe(pid);

    await again.instanceBalloonMemory(ri(c, 'node1'), 96);
    expect(await again.instanceInfo(ri(c, 'node1'))).toMatchObject({ memory: 96 });
    expect(c.state().nodes.node1!.processes.web1).toMatchObject({ state: 'running', memory: 96 });
    const runtime = JSON.parse(await again.migrationInfo(ri(c, 'node1'))) as Record<string, unknown>;
    expect(runtime).toMatchObject({ memory: 96, deviceMemory: TEST_MEMORY });
    expect(runtime).not.toHaveProperty('args'); // never a command line: the target builds its own
    expect(again.readMeta('web1')!.argv).toEqual(expect.arrayContaining(['-m', String(TEST_MEMORY)]));

    await again.instanceShutdown(ri(c, 'node1'), 30, 'test'); // the guest honours the ACPI power button: no 'forced after' below
    expect(pidAlive(pid)).toBe(false);
    expect(readFileSync(again.journalPath('web1'), 'utf8')).toContain('-> system_powerdown');
    expect(c.log({ rpc: 'instance_shutdown', node: 'node1' }).map((e) => e.detail)).toEqual(['test']);
    expect(c.status('web1').runningOn).toEqual([]);
    expect(await again.instanceInfo(ri(c, 'node1'))).toBeNull();
    await again.instanceShutdown(ri(c, 'node1'), 30, 'twice'); // not running: nothing to do
  });

  test('a guest that ignores ACPI is killed when the shutdown timeout runs out', async () => {
    const c = await cluster();
    const n1 = driver(c, 'node1', { kernel: null }); // firmware only: nobody handles the power button
    await n1.instanceStart(ri(c, 'node1'), '');
    const pid = n1.readMeta('web1')!.pid!;
    await n1.instanceShutdown(ri(c, 'node1'), 1, 'test');
    expect(pidAlive(pid)).toBe(false);
    expect(c.log({ rpc: 'instance_shutdown', node: 'node1' }).map((e) => e.detail)).toEqual(['forced after 1 s; test']);
  });

  test('a start needs the disks: a DRBD Secondary is refused with the hypervisor error', async () => {
    const c = await cluster();
    const n2 = driver(c, 'node2');
    const e = await rejects(n2.instanceStart(ri(c, 'node2'), ''));
    expect(e.message).toMatch(/^Hypervisor error: cannot open disk 0: drbd\d+ is Secondary/);
    expect(n2.metaNames()).toEqual([]);
  });

  test.skipIf(!existsSync('/dev/kvm'))('accel kvm when asked', async () => {
    const c = await cluster();
    const n1 = driver(c, 'node1', { accel: 'kvm' });
    await n1.instanceStart(ri(c, 'node1'), '');
    const kvm = await withQmp(n1.qmpPath('web1'), (q) => q.execute<{ enabled: boolean }>('query-kvm'));
    expect(kvm.enabled).toBe(true);
  });
});

describe('migration RPCs', () => {
  test('accept is idempotent, re-attaches from a fresh driver, and trusts no recycled pid', async () => {
    const c = await cluster();
    const n1 = driver(c, 'node1');
    const n2 = driver(c, 'node2');
    await n1.instanceStart(ri(c, 'node1'), '');
    await dualPrimary(c, n1, n2);
    const info = await n1.migrationInfo(ri(c, 'node1'));
    const { port } = await n2.acceptInstance(ri(c, 'node2'), info, '127.0.1.22');
    const pid = n2.readMeta('web1')!.pid!;
    expect(n2.readMeta('web1')!.argv.slice(-2)).toEqual(['-incoming', `tcp:127.0.1.22:${port}`]);
    expect(await driver(c, 'node2').acceptInstance(ri(c, 'node2'), info, '127.0.1.22')).toEqual({ port });
    expect(n2.readMeta('web1')!.pid).toBe(pid);
    expect(c.state().nodes.node2!.processes.web1).toMatchObject({ state: 'incoming', incoming: { port } });
    expect(await withQmp(n2.qmpPath('web1'), (q) => q.execute<{ status: string }>('query-status'))).toMatchObject({ status: 'inmigrate' });

    // A crash between the spawn and recording the pid: the process is found by its monitor socket.
    const meta = n2.readMeta('web1')!;
    writeFileSync(n2.metaPath('web1'), JSON.stringify({ ...meta, pid: null, startTime: null }));
    expect(await n2.instanceInfo(ri(c, 'node2'))).toMatchObject({ state: 'incoming' });
    expect(n2.readMeta('web1')!.pid).toBe(pid);

    // A recorded pid that now belongs to another process is not our QEMU.
    writeFileSync(n2.metaPath('web1'), JSON.stringify({ ...meta, pid: process.pid }));
    expect(await n2.instanceInfo(ri(c, 'node2'))).toBeNull();
    expect(pidAlive(process.pid)).toBe(true);
  });

  test('accept refuses an address that is not the node’s and a runtime from another backend', async () => {
    const c = await cluster();
    const n1 = driver(c, 'node1');
    const n2 = driver(c, 'node2');
    await n1.instanceStart(ri(c, 'node1'), '');
    await dualPrimary(c, n1, n2);
    const info = await n1.migrationInfo(ri(c, 'node1'));
    expect((await rejects(n2.acceptInstance(ri(c, 'node2'), info, '127.0.1.99'))).message).toBe(
      'Failed to accept instance: cannot listen on 127.0.1.99: address not on this node',
    );
    expect((await rejects(n2.acceptInstance(ri(c, 'node2'), '{"memory":128}', '127.0.1.22'))).message).toMatch(
      /^Failed to accept instance: refusing the migration information \(not a QEMU runtime/,
    );
  });

  test('migrate re-attaches to its own migration, refuses a second one; aborting cancels it and kills the destination', async () => {
    const c = await cluster();
    const n1 = driver(c, 'node1');
    const n2 = driver(c, 'node2');
    await c.config.update((cfg) => void (cfg.instances.web1!.hvparams = { migration_bandwidth: 2 }));
    await n1.instanceStart(ri(c, 'node1'), '');
    await sleep(300);
    await dualPrimary(c, n1, n2);
    const info = await n1.migrationInfo(ri(c, 'node1'));
    const { port } = await n2.acceptInstance(ri(c, 'node2'), info, '127.0.1.22');
    const target = { node: 'node2', ip: '127.0.1.22', port };
    await n1.instanceMigrate(ri(c, 'node1'), target, true);
    await driver(c, 'node1').instanceMigrate(ri(c, 'node1'), target, true); // a retry: re-attached
    expect((await rejects(n1.instanceMigrate(ri(c, 'node1'), { ...target, port: port + 1 }, true))).message).toBe(
      "Failed to migrate instance: There's a migration process in progress",
    );
    expect(readFileSync(n1.journalPath('web1'), 'utf8').match(/-> migrate \{/g)).toHaveLength(1);
    const st = await n1.instanceGetMigrationStatus(ri(c, 'node1'));
    expect(st.status).toBe('active');
    expect(st.totalRam).toBeGreaterThan(TEST_MEMORY);
    expect(c.status('web1').processes).toEqual({
      node1: { state: 'running', migration: 'active to node2' },
      node2: { state: 'incoming' },
    });

    // The master's abort: the target first (its process is killed), then the source.
    const dstPid = n2.readMeta('web1')!.pid!;
    await n2.instanceFinalizeMigrationDst(ri(c, 'node2'), info, false);
    expect(pidAlive(dstPid)).toBe(false);
    await n1.instanceFinalizeMigrationSrc(ri(c, 'node1'), false, true);
    expect(await withQmp(n1.qmpPath('web1'), (q) => q.execute<{ status: string }>('query-status'))).toMatchObject({ status: 'running' });
    expect(c.status('web1').processes).toEqual({ node1: { state: 'running' } });
  });

  test('a destination that rejects the device state fails the migration on the source (return path), which runs on', async () => {
    const c = await cluster();
    const n1 = driver(c, 'node1');
    const n2 = driver(c, 'node2');
    await c.config.update((cfg) => void (cfg.instances.web1!.hvparams = { migration_bandwidth: 256 }));
    await n1.instanceStart(ri(c, 'node1'), '');
    await dualPrimary(c, n1, n2);
    // A device hot-plugged into the source that the destination (built from the instance definition)
    // lacks: RAM loads, then the device state is refused at the very end, the case where a source
    // without the return path reports "completed" (docs/qemu.md, "Success only when the destination runs").
    await withQmp(n1.qmpPath('web1'), (q) => q.execute('device_add', { driver: 'virtio-rng-pci', id: 'rng0' }));
    const info = await n1.migrationInfo(ri(c, 'node1'));
    const { port } = await n2.acceptInstance(ri(c, 'node2'), info, '127.0.1.22');
    const dstPid = n2.readMeta('web1')!.pid!;
    await n1.instanceMigrate(ri(c, 'node1'), { node: 'node2', ip: '127.0.1.22', port }, true);
    expect((await migrationEnd(c, n1)).status).toBe('failed');
    expect(await withQmp(n1.qmpPath('web1'), (q) => q.execute<{ status: string }>('query-status'))).toMatchObject({ status: 'running' });
    expect((await rejects(n1.instanceFinalizeMigrationSrc(ri(c, 'node1'), true, true))).message).toMatch(
      /^Failed to finalize the migration on the source node: migration is failed .*refusing to stop the source$/,
    );
    expect(await within(20_000, () => !pidAlive(dstPid))).toBe(true); // the destination QEMU exits on its own
    expect(readFileSync(n2.logPath('web1'), 'utf8')).toMatch(/load of migration failed/);
  });

  test('the target never runs a command line from the payload: forged or mismatching migration info is refused, nothing starts', async () => {
    const c = await cluster();
    const n1 = driver(c, 'node1');
    const n2 = driver(c, 'node2');
    await n1.instanceStart(ri(c, 'node1'), '');
    await dualPrimary(c, n1, n2);
    const info = JSON.parse(await n1.migrationInfo(ri(c, 'node1'))) as Record<string, unknown>;
    const marker = join(c.home, 'pwned');
    const forged: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...info, args: ['-netdev', `tap,id=n0,script=/bin/sh -c 'touch ${marker}'`] }, /carries a command line/],
      [{ ...info, memory: TEST_MEMORY * 4, deviceMemory: TEST_MEMORY * 4 }, /device memory 512 \(the instance has 128\)/],
      [{ ...info, vcpus: 64 }, /vcpus 64 \(the instance has 2\)/],
      [{ ...info, name: 'db1' }, /name "db1" \(the instance has "web1"\)/],
      [{ ...info, kernel: 'evil' }, /Unrecognized key/],
    ];
    const logBefore = c.state().log.length;
    for (const [rt, why] of forged) {
      const e = await rejects(n2.acceptInstance(ri(c, 'node2'), JSON.stringify(rt), '127.0.1.22'));
      expect(e.message).toMatch(/^Failed to accept instance: refusing the migration information \(/);
      expect(e.message).toMatch(why);
      expect(e.transient).toBe(false);
    }
    expect(n2.metaNames()).toEqual([]);
    expect(existsSync(marker)).toBe(false);
    expect(c.state().log.length).toBe(logBefore); // refused before the RPC frame: the node's log is untouched
    expect(c.status('web1').runningOn).toEqual(['node1']);
  });

  test('after a completed transfer an abort is refused on both sides: the running destination is the current copy', async () => {
    const c = await cluster();
    const n1 = driver(c, 'node1');
    const n2 = driver(c, 'node2');
    await c.config.update((cfg) => void (cfg.instances.web1!.hvparams = { migration_bandwidth: 256 }));
    await n1.instanceStart(ri(c, 'node1'), '');
    await dualPrimary(c, n1, n2);
    const info = await n1.migrationInfo(ri(c, 'node1'));
    const { port } = await n2.acceptInstance(ri(c, 'node2'), info, '127.0.1.22');
    const dstPid = n2.readMeta('web1')!.pid!;
    await n1.instanceMigrate(ri(c, 'node1'), { node: 'node2', ip: '127.0.1.22', port }, true);
    expect((await migrationEnd(c, n1)).status).toBe('completed');
    const hint = "run 'ganeti-temporal instance migrate --cleanup web1'";
    expect((await rejects(n2.instanceFinalizeMigrationDst(ri(c, 'node2'), info, false))).message).toBe(
      `Failed to finalize migration on the target node: instance web1 runs here (running) and may be the only current copy, refusing to stop it: ${hint}`,
    );
    expect(pidAlive(dstPid)).toBe(true);
    expect((await rejects(n1.instanceFinalizeMigrationSrc(ri(c, 'node1'), false, true))).message).toBe(
      `Failed to finalize the migration on the source node: the memory transfer of web1 completed, refusing to resume this stale copy: ${hint}`,
    );
    expect(await withQmp(n1.qmpPath('web1'), (q) => q.execute<{ status: string }>('query-status'))).toMatchObject({
      status: 'postmigrate',
    });
    // What the cleanup then does: finish the migration.
    await n1.instanceFinalizeMigrationSrc(ri(c, 'node1'), true, true);
    await n2.instanceFinalizeMigrationDst(ri(c, 'node2'), info, true);
    expect(c.status('web1').processes).toEqual({ node2: { state: 'running' } });
  });

  test('finalize refuses what did not happen: a source without a completed migration, a destination still waiting', async () => {
    const c = await cluster();
    const n1 = driver(c, 'node1');
    const n2 = driver(c, 'node2', { switchoverWaitMs: 300 });
    await n1.instanceStart(ri(c, 'node1'), '');
    expect((await rejects(n1.instanceFinalizeMigrationSrc(ri(c, 'node1'), true, true))).message).toBe(
      'Failed to finalize the migration on the source node: migration is not running (source running), refusing to stop the source',
    );
    expect(n1.readMeta('web1')!.pid).not.toBeNull();

    // A non-live migration stopped the source, then failed: finalize with failure resumes it.
    await withQmp(n1.qmpPath('web1'), (q) => q.execute('stop'));
    await n1.instanceFinalizeMigrationSrc(ri(c, 'node1'), false, false);
    expect(await withQmp(n1.qmpPath('web1'), (q) => q.execute<{ status: string }>('query-status'))).toMatchObject({ status: 'running' });

    await dualPrimary(c, n1, n2);
    const info = await n1.migrationInfo(ri(c, 'node1'));
    await n2.acceptInstance(ri(c, 'node2'), info, '127.0.1.22');
    expect((await rejects(n2.instanceFinalizeMigrationDst(ri(c, 'node2'), info, true))).message).toBe(
      'Failed to finalize migration on the target node: instance web1 did not become running (status inmigrate)',
    );
    await n2.instanceFinalizeMigrationDst(ri(c, 'node2'), info, false);
    expect(n2.metaNames()).toEqual([]);
    expect(c.status('web1').runningOn).toEqual(['node1']);
  });
});

test('a node powered off in the hardware document loses its processes and answers nothing', async () => {
  const c = await cluster();
  const n1 = driver(c, 'node1');
  await n1.instanceStart(ri(c, 'node1'), '');
  const pid = n1.readMeta('web1')!.pid!;
  await c.hw.mutate((s, now) => setPower(s, now, 'node1', false));
  const e = await rejects(n1.nodeInfo());
  expect(e.transient).toBe(true);
  expect(pidAlive(pid)).toBe(false);
  expect(n1.metaNames()).toEqual([]);
});

test('the storage side asks the driver: a live QEMU holds its DRBD disk open, a killed one does not', async () => {
  const c = await cluster();
  const n1 = driver(c, 'node1');
  await n1.instanceStart(ri(c, 'node1'), '');
  const pid = n1.readMeta('web1')!.pid!;
  const e = await rejects(n1.blockdevClose(ri(c, 'node1')));
  expect(e.message).toMatch(/Device is held open by someone/);
  process.kill(pid, 'SIGKILL');
  expect(await within(5000, () => !pidAlive(pid))).toBe(true);
  expect(c.status('web1').runningOn).toEqual(['node1']); // the document has not heard yet
  await n1.blockdevClose(ri(c, 'node1'));
  expect(c.status('web1').runningOn).toEqual([]); // reported gone through the storage side
  expect(n1.metaNames()).toEqual([]);
});

test('on a host of its own the driver needs no simulator document: facts from the host, nothing reported', async () => {
  const c = await cluster();
  const home = join(c.home, 'host'); // under the cluster's home: its QEMU is killed with the cluster's
  const facts = { powered: true, memoryTotal: 4096, dom0Memory: 512, secondaryIp: '127.0.1.21', migrationBasePort: 8102 };
  const hv = new QemuHypervisor(
    { home, node: 'node1', kernel: fx.kernel(), watchMs: 0 },
    { host: { exists: () => true, facts: () => facts }, storage: { openRefusal: () => Promise.resolve(null) } },
  );
  try {
    const seq = c.state().logSeq;
    await hv.instanceStart(ri(c, 'node1'), '');
    expect(await hv.instanceList()).toEqual(['web1']);
    expect(await hv.nodeInfo()).toMatchObject({ memoryTotal: 4096, memoryDom0: 512, memoryFree: 4096 - 512 - TEST_MEMORY });
    expect(await hv.withHolders('web1', (held) => Promise.resolve(held()))).toBe(true);
    await hv.instanceShutdown(ri(c, 'node1'), 1, '');
    expect(await hv.withHolders('web1', (held) => Promise.resolve(held()))).toBe(false);
    expect(existsSync(join(home, 'sim'))).toBe(false);
    expect(c.state().logSeq).toBe(seq); // nothing reached the simulated cluster's document
  } finally {
    hv.close();
  }
});
