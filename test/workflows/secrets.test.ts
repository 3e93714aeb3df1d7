/**
 * What an operation leaves on the Temporal server: with the payload codec on, no DRBD secret and no
 * byte of the key is in plain text in any history (migration, failover, cleanup, a failed
 * migration) nor in the dev server's SQLite database file; and decoded with the key, the histories
 * hold no DRBD secret at all (the configuration activities strip them: no RPC uses them), neither of
 * the operated instance nor of any other. A control workflow started without the codec shows that
 * plain payloads are readable in the database file, so the search would find them.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import protos from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { failoverInstance, migrateInstance, OperationError } from '../../client/api.js';
import { AesGcmCodec, readKeyFile } from '../../connection/codec.js';
import { orchestratorQueue } from '../../domain/naming.js';
import { createTestCluster } from '../helpers/cluster.js';
import { testKeyFile, testKeyRing } from '../helpers/codec.js';
import { startServer, Workers } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
let dbDir: string;

beforeAll(async () => {
  dbDir = mkdtempSync(join(tmpdir(), 'ganeti-temporal-db-'));
  env = await startServer({ dbFilename: join(dbDir, 'dev-server.db') });
});
afterAll(async () => {
  await env?.teardown();
  rmSync(dbDir, { recursive: true, force: true });
});

/** Every payload of a history (anything shaped {metadata: {encoding}, data}). */
function payloadsOf(o: unknown, out: Payload[] = []): Payload[] {
  if (!o || typeof o !== 'object' || o instanceof Uint8Array) return out;
  const p = o as Payload;
  if (p.metadata && typeof p.metadata === 'object' && 'encoding' in p.metadata && p.metadata.encoding instanceof Uint8Array) {
    out.push(p);
    return out;
  }
  for (const v of Object.values(o)) payloadsOf(v, out);
  return out;
}

/** The ways a key could appear as text or bytes. */
function keyForms(): Array<string | Buffer> {
  return [...readKeyFile(testKeyFile()).keys.values()].flatMap((k) => [
    k,
    k.toString('base64'),
    k.toString('hex'),
    k.toString('base64url'),
  ]);
}

test('no DRBD secret and no key in plain text in encrypted histories or the database; none at all once decoded', async () => {
  const c = await createTestCluster();
  const w = await new Workers(env, c).all();
  const plainClient = new Client({ connection: env.connection });
  try {
    const secrets = Object.values(c.cfg().instances).flatMap((i) => i.disks.flatMap((d) => (d.drbd?.secret ? [d.drbd.secret] : [])));
    expect(secrets.length).toBeGreaterThanOrEqual(4);
    const reason = 'maintenance-window-7c1f';
    const opts = { cluster: c.name, snapshot: c.cfg() };

    // A migration, a failover, a cleanup and a failed migration, through the encrypting client.
    expect((await migrateInstance(env.client, { instance: 'web1', reason }, opts)).outcome).toBe('migrated');
    expect((await failoverInstance(env.client, { instance: 'web2', reason }, opts)).outcome).toBe('failed-over');
    expect((await migrateInstance(env.client, { instance: 'db1', cleanup: true, reason }, opts)).outcome).toBe('cleaned-up');
    await c.addFault({ rpc: 'accept_instance', node: 'node1', mode: 'permanent' });
    await expect(migrateInstance(env.client, { instance: 'web3', reason }, opts)).rejects.toBeInstanceOf(OperationError);
    // The control: a start without the codec (on a queue no worker polls) stores its input as it is.
    const control = await plainClient.workflow.start('migrateInstanceWorkflow', {
      taskQueue: `${orchestratorQueue(c.name)}.nobody`,
      workflowId: 'control/plain-payloads',
      args: [{ instance: 'plain-marker-5d2e' }],
    });

    const codec = new AesGcmCodec(testKeyRing());
    const keys = keyForms();
    for (const instance of ['web1', 'web2', 'db1', 'web3']) {
      const history = await env.client.workflow.getHandle(`instance/${instance}`).fetchHistory();
      const raw = Buffer.from(protos.temporal.api.history.v1.History.encode(history).finish());
      const json = JSON.stringify(history);
      for (const s of secrets) expect(raw.includes(s), `${s} in the history of ${instance}`).toBe(false);
      for (const k of keys) expect(raw.includes(k) || json.includes(k.toString()), `a key in the history of ${instance}`).toBe(false);
      expect(raw.includes(reason), `the reason in plain text in the history of ${instance}`).toBe(false);

      // Decoded with the key: everything readable, and still no secret.
      const payloads = payloadsOf(history);
      expect(payloads.length).toBeGreaterThan(10);
      const decoded = (await codec.decode(payloads)).map((p) => JSON.stringify(defaultPayloadConverter.fromPayload(p))).join('\n');
      expect(decoded).toContain(reason);
      expect(decoded).toContain(c.instance(instance).uuid); // the snapshot is there …
      for (const s of secrets) expect(decoded, `${s} in the decoded history of ${instance}`).not.toContain(s); // … without secrets
      expect(decoded).not.toMatch(/"secret"/);
    }

    // The server's database file (and its journal files), read as bytes.
    const db = Buffer.concat(
      readdirSync(dbDir)
        .filter((f) => f.startsWith('dev-server.db'))
        .map((f) => readFileSync(join(dbDir, f))),
    );
    expect(db.includes('plain-marker-5d2e')).toBe(true); // plain payloads would be found
    expect(db.includes('instance/web1')).toBe(true);
    expect(db.includes(reason)).toBe(false);
    for (const s of secrets) expect(db.includes(s), `${s} in the database file`).toBe(false);
    for (const k of keys) expect(db.includes(k), 'a key in the database file').toBe(false);
    await control.terminate('control done');
  } finally {
    await w.stopAll();
    c.remove();
    await plainClient.connection.close().catch(() => undefined);
  }
});
