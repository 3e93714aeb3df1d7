/**
 * The simulator's memory transfer (adapters/sim/migration-model.ts): the dirty rate against the
 * bandwidth and the downtime limit decide convergence; auto-converge throttles in QEMU's steps;
 * post-copy and a paused source finish in bounded time; a mirrored (real) migration never completes.
 */
import { describe, expect, test } from 'vitest';
import { checkpoint, migrationProgress } from '../../adapters/sim/migration-model.js';
import type { SimMigration } from '../../adapters/sim/state.js';

const mig = (patch: Partial<SimMigration> = {}): SimMigration => ({
  targetNode: 'node2',
  targetIp: '10.0.0.2',
  port: 8102,
  live: true,
  startedAt: 0,
  ram: 1024,
  bandwidth: 32,
  dirtyRate: 2,
  status: 'active',
  downtimeMs: 30,
  ...patch,
});
const at = (m: SimMigration, sec: number) => migrationProgress(m, sec * 1000);

describe('pre-copy', () => {
  test('a slow-dirtying guest converges in about RAM / (bandwidth − dirty rate), as before passes existed', () => {
    const m = mig();
    expect(at(m, 30)).toMatchObject({ done: false, passes: 0 });
    expect(at(m, 33.5)).toMatchObject({ done: false, passes: 1 });
    expect(at(m, 34.2)).toMatchObject({ done: true, passes: 3, remaining: 0 });
    expect(at(m, 34.2).transferred).toBeGreaterThan(1024);
  });

  test('a migration recorded without a downtime limit converges as long as the guest dirties less than the bandwidth', () => {
    const { downtimeMs: _d, ...old } = mig({ dirtyRate: 30 });
    expect(at(old as SimMigration, 3600).done).toBe(true);
  });

  test('a guest dirtying at least the bandwidth never converges; its remaining memory stays flat', () => {
    const m = mig({ dirtyRate: 40 });
    expect(at(m, 3600)).toMatchObject({ done: false, remaining: 1024, dirtyRate: 40, throttle: 0 });
    expect(at(m, 3600).passes).toBe(112);
    expect(at(m, 100).remaining).toBe(at(m, 200).remaining);
  });

  test('a last dirty set that does not fit in the downtime never converges; a larger downtime lets it', () => {
    const m = mig({ dirtyRate: 20 });
    expect(at(m, 3600)).toMatchObject({ done: false, remaining: 1 });
    checkpoint(m, 3600_000);
    m.downtimeMs = 60;
    expect(migrationProgress(m, 3600_200)).toMatchObject({ done: true });
  });

  test('auto-converge throttles from the second pass: 20 %, then +10 % per pass, while the guest dirties more than half the bandwidth', () => {
    const m = mig({ dirtyRate: 40, autoConverge: true });
    expect(at(m, 33)).toMatchObject({ throttle: 0, passes: 1 });
    expect(at(m, 65)).toMatchObject({ throttle: 20, dirtyRate: 32 });
    expect(at(m, 100)).toMatchObject({ throttle: 30, dirtyRate: 28 });
    expect(at(m, 300)).toMatchObject({ done: true, throttle: 60 });
  });

  test('a mirrored migration (no bandwidth) never completes', () => {
    expect(at(mig({ bandwidth: 0 }), 3600)).toMatchObject({ done: false, transferred: 0 });
  });
});

describe('post-copy and a paused source', () => {
  test.each(['postcopy', 'stopcopy'] as const)('%s sends what is left at the bandwidth and completes', (phase) => {
    const m = mig({ dirtyRate: 40 });
    checkpoint(m, 100_000, phase);
    expect(migrationProgress(m, 100_000 + 31_000)).toMatchObject({ done: false, phase, dirtyRate: 0 });
    expect(migrationProgress(m, 100_000 + 31_000).remaining).toBeCloseTo(32);
    expect(migrationProgress(m, 100_000 + 32_000)).toMatchObject({ done: true, remaining: 0 });
  });
});
