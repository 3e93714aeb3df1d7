/**
 * What of the configuration leaves the store (no DRBD secret) and the RPC timeout classes (Ganeti's
 * lib/rpc_defs.py), both pure domain data.
 */
import { describe, expect, test } from 'vitest';
import { defaultClusterConfig } from '../../../adapters/sim/cluster.js';
import { RPC_CLASSES, RPC_TIMEOUT_CLASS } from '../../../domain/rpc-timeouts.js';
import { instanceWithoutSecrets, snapshotWithoutSecrets } from '../../../domain/secrets.js';

describe('DRBD secrets never leave the configuration store', () => {
  test('a snapshot keeps every instance and disk, but no DRBD secret', () => {
    const { reservations: _r, ...snap } = defaultClusterConfig('c1');
    const out = snapshotWithoutSecrets(snap);
    expect(Object.keys(out.instances)).toEqual(Object.keys(snap.instances));
    expect(JSON.stringify(out)).not.toContain('secret');
    const web1 = out.instances.web1!;
    const { secret: _s, ...drbd } = snap.instances.web1!.disks[0]!.drbd!;
    expect(web1.disks[0]).toEqual({ ...snap.instances.web1!.disks[0], drbd });
    // The input is not changed, and disks without DRBD are kept as they are.
    expect(snap.instances.web1!.disks[0]!.drbd!.secret).toMatch(/^secret-/);
    expect(out.instances.files1).toEqual(snap.instances.files1);
    expect(out.cluster).toEqual(snap.cluster);
    expect(out.nodes).toEqual(snap.nodes);
  });

  test('an instance returned by a configuration write has none either', () => {
    const web2 = defaultClusterConfig('c1').instances.web2!;
    const out = instanceWithoutSecrets(web2);
    expect(out.disks.every((d) => d.drbd && !('secret' in d.drbd))).toBe(true);
    expect({ ...out, disks: [] }).toEqual({ ...web2, disks: [] });
  });
});

test("every node RPC has Ganeti's timeout class", () => {
  expect(RPC_CLASSES).toEqual(['urgent', 'normal', 'slow']);
  const byClass = (cls: string) =>
    Object.entries(RPC_TIMEOUT_CLASS)
      .filter(([, c]) => c === cls)
      .map(([rpc]) => rpc)
      .sort();
  expect(byClass('urgent')).toEqual(['bridgesExist', 'instanceInfo', 'instanceList', 'nodeInfo']);
  expect(byClass('slow')).toEqual(['drbdWaitSync', 'instanceFinalizeMigrationSrc', 'instanceGetMigrationStatus', 'instanceMigrate']);
  expect(byClass('normal')).toEqual([
    'acceptInstance',
    'blockdevAssemble',
    'blockdevClose',
    'blockdevFind',
    'blockdevOpen',
    'blockdevShutdown',
    'drbdAttachNet',
    'drbdDisconnectNet',
    'instanceBalloonMemory',
    'instanceFinalizeMigrationDst',
    'instanceMigratable',
    'instanceMigrationControl',
    'instanceShutdown',
    'instanceStart',
    'migrationInfo',
    'runHooks',
  ]);
});
