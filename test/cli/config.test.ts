/**
 * `config export` and `config import` as separate processes against the cluster's configuration
 * database: secrets only on request, the import validated, refused while operations run (their
 * reservations in the configuration, their workflows on the server), and a backup of the
 * configuration it replaced.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { ClusterConfig } from '../../domain/types.js';
import type { TestCluster } from '../helpers/cluster.js';
import { cli } from '../helpers/cli.js';
import { useHarness } from '../helpers/harness.js';

const h = useHarness();

const envFor = (c: TestCluster) => ({ GANETI_TEMPORAL_HOME: c.home, TEMPORAL_ADDRESS: h.env().address, TEMPORAL_NAMESPACE: 'default' });
const backups = (c: TestCluster) => readdirSync(c.home).filter((f) => f.startsWith('config-backup-'));

describe('config export and import', () => {
  test('export prints the configuration without the DRBD secrets; --include-secrets adds them', async () => {
    const { c } = await h.cluster();
    const { reservations: _r, leases: _l, ...stored } = c.cfg();
    const plain = await cli(['config', 'export'], envFor(c));
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).not.toContain('"secret"');
    const exported = plain.json() as ClusterConfig;
    expect(exported.instances.web1!.disks[0]!.drbd).toEqual({ ...stored.instances.web1!.disks[0]!.drbd, secret: undefined });
    expect(exported.nodes).toEqual(stored.nodes);
    const full = await cli(['config', 'export', '--include-secrets'], envFor(c));
    expect(full.code, full.stderr).toBe(0);
    expect(full.json()).toEqual(stored);
  });

  test('import replaces the configuration and keeps a backup (mode 0600) of the previous one', async () => {
    const { c } = await h.cluster();
    const before = c.cfg();
    const doc = (await cli(['config', 'export', '--include-secrets'], envFor(c))).json() as ClusterConfig;
    doc.nodes.node3!.drained = true;
    doc.instances.web2!.adminState = 'down';
    const file = join(c.home, 'edited.json');
    writeFileSync(file, JSON.stringify(doc));
    const r = await cli(['config', 'import', file, '--json'], envFor(c));
    expect(r.code, r.stderr).toBe(0);
    const out = r.json() as { file: string; serial: number; backup: string };
    expect(out).toMatchObject({ file, serial: before.serial + 1 });
    expect(JSON.parse(readFileSync(out.backup, 'utf8'))).toEqual(before);
    expect(statSync(out.backup).mode & 0o777).toBe(0o600);
    const after = c.cfg();
    expect(after.nodes.node3!.drained).toBe(true);
    expect(after.instances.web2!.adminState).toBe('down');
    expect(after.serial).toBe(before.serial + 1);
    const text = await cli(['config', 'import', file], envFor(c));
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`configuration of cluster ${c.name} imported from ${file}`);
    expect(backups(c)).toHaveLength(2);
  });

  test('import is refused while an operation holds a reservation, and changes nothing', async () => {
    const { c } = await h.cluster();
    const before = c.cfg();
    const file = join(c.home, 'same.json');
    writeFileSync(file, JSON.stringify(before));
    await c.config.reserveMemory({
      opId: 'op1',
      node: 'node2',
      instance: 'web1',
      needed: 512,
      wanted: 512,
      reportedFree: 4096,
      workflowId: 'instance/web1',
      runId: 'r1',
    });
    const r = await cli(['config', 'import', file, '--json'], envFor(c));
    expect(r.code).toBe(4);
    expect(r.json()).toMatchObject({ error: { type: 'ClusterBusy', message: expect.stringContaining('reservation op1') } });
    expect(c.cfg().serial).toBe(before.serial);
    expect(backups(c)).toEqual([]);
  });

  test('import is refused while a workflow runs on the cluster', async () => {
    const { c } = await h.cluster({ sim: { timeFactor: 10 } });
    const file = join(c.home, 'same.json');
    writeFileSync(file, JSON.stringify(c.cfg()));
    expect((await cli(['instance', 'migrate', 'db1', '--submit'], envFor(c))).code).toBe(0);
    const busy = await cli(['config', 'import', file, '--json'], envFor(c));
    expect(busy.code).toBe(4);
    expect(busy.json()).toMatchObject({ error: { type: 'ClusterBusy', message: expect.stringContaining('instance/db1') } });
    await h.env().client.workflow.getHandle('instance/db1').result();
    expect(backups(c)).toEqual([]);
    expect(c.instance('db1').primaryNode).toBe('node3');
  });

  test('a document the schema refuses (an unknown field, no DRBD secrets) is a usage error and changes nothing', async () => {
    const { c } = await h.cluster();
    const before = c.cfg();
    const unknown = join(c.home, 'unknown.json');
    writeFileSync(unknown, JSON.stringify({ ...before, cluster: { ...before.cluster, rack: 'r1' } }));
    const r = await cli(['config', 'import', unknown, '--json'], envFor(c));
    expect(r.code).toBe(2);
    expect(r.json()).toMatchObject({ error: { type: 'UsageError', message: expect.stringContaining('cluster.rack') } });
    const noSecrets = join(c.home, 'export.json');
    writeFileSync(noSecrets, (await cli(['config', 'export'], envFor(c))).stdout);
    const s = await cli(['config', 'import', noSecrets], envFor(c));
    expect(s.code).toBe(2);
    expect(s.stderr).toContain('drbd disk without its secret');
    const missing = await cli(['config', 'import', join(c.home, 'nope.json')], envFor(c));
    expect(missing.code).toBe(2);
    expect(c.cfg()).toEqual(before);
    expect(backups(c)).toEqual([]);
  });
});
