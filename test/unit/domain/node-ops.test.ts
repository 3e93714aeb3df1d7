/** The pure parts of the node operations: input schemas, limits, the scheduler's fit, placement, summaries. */
import { describe, expect, test } from 'vitest';
import { defaultClusterConfig } from '../../../adapters/sim/cluster.js';
import {
  effectiveLimits,
  fitsLimits,
  INSTANCE_STATES,
  isFinal,
  knownTarget,
  NodeFailoverInputSchema,
  NodeMigrateInputSchema,
  nodeOperationSummary,
  placeInstance,
  primaryInstances,
} from '../../../domain/node-ops.js';
import { describeZodError } from '../../../domain/ops.js';

const cfg = defaultClusterConfig('c1');
const L = { maxConcurrent: 3, maxOutgoing: 2, maxIncoming: 1 };

describe('node operation inputs', () => {
  test('defaults: no drain, no dry run, no stop on failure, no limit overrides', () => {
    expect(NodeMigrateInputSchema.parse({ node: 'node1' })).toEqual({
      node: 'node1',
      ignoreIpolicy: false,
      dryRun: false,
      reason: '',
      drain: false,
      stopOnFailure: false,
      limits: {},
      allowFailover: false,
      allowRuntimeChanges: true,
    });
    expect(NodeFailoverInputSchema.parse({ node: 'node1' })).toMatchObject({ ignoreConsistency: false, shutdownTimeout: 120 });
  });

  test.each([
    [{ node: '' }, 'node: must not be empty'],
    [{ node: 'node1', limits: { maxConcurrent: 0 } }, 'limits.maxConcurrent: Too small'],
    [{ node: 'node1', limits: { maxIncoming: 1.5 } }, 'limits.maxIncoming: Invalid input: expected int'],
    [{ node: 'node1', limits: { bogus: 1 } }, 'Unrecognized key'],
    [{ node: 'node1', mode: 'live', live: true }, "Only one of the 'live' and 'mode' parameters are accepted"],
    [{ node: 'node1', targetNode: 'node1' }, 'targetNode: the target node must not be the node being emptied'],
    [{ node: 'node1', extra: true }, 'Unrecognized key'],
  ])('refuses %j', (input, message) => {
    const r = NodeMigrateInputSchema.safeParse(input);
    expect(r.success).toBe(false);
    if (!r.success) expect(describeZodError(r.error)).toContain(message);
  });

  test('the failover refuses migrate-only options', () => {
    expect(NodeFailoverInputSchema.safeParse({ node: 'node1', mode: 'live' }).success).toBe(false);
    expect(NodeFailoverInputSchema.safeParse({ node: 'node1', shutdownTimeout: -1 }).success).toBe(false);
  });
});

describe('limits and scheduling', () => {
  test('the call overrides the cluster defaults one by one', () => {
    expect(effectiveLimits(cfg, {})).toEqual({ maxConcurrent: 5, maxOutgoing: 2, maxIncoming: 2 });
    expect(effectiveLimits(cfg, { maxIncoming: 1 })).toEqual({ maxConcurrent: 5, maxOutgoing: 2, maxIncoming: 1 });
  });

  test('an operation fits while C, O and I all have room', () => {
    expect(fitsLimits(L, [], 'n1', 'n2')).toBe(true);
    expect(fitsLimits(L, [{ source: 'n1', target: 'n2' }], 'n1', 'n2')).toBe(false); // I
    expect(fitsLimits(L, [{ source: 'n1', target: 'n2' }], 'n1', 'n3')).toBe(true);
    expect(
      fitsLimits(
        L,
        [
          { source: 'n1', target: 'n2' },
          { source: 'n1', target: 'n3' },
        ],
        'n1',
        'n4',
      ),
    ).toBe(false); // O
    expect(
      fitsLimits(
        L,
        [
          { source: 'n5', target: 'n2' },
          { source: 'n6', target: 'n3' },
          { source: 'n7', target: 'n4' },
        ],
        'n1',
        'n8',
      ),
    ).toBe(false); // C
    expect(fitsLimits(L, [{ source: 'n1', target: null }], 'n1', null)).toBe(true);
  });

  test('primary instances in name order; targets: the DRBD secondary, the explicit node or the allocator', () => {
    expect(primaryInstances(cfg, 'node1').map((i) => i.name)).toEqual(['db1', 'web1']);
    expect(knownTarget(cfg.instances.web1!, undefined)).toBe('node2');
    expect(knownTarget(cfg.instances.files1!, undefined)).toBe('allocator');
    expect(knownTarget(cfg.instances.files1!, 'node3')).toBe('node3');
  });

  test('placement: most free memory among targets with an incoming slot, ties by name', () => {
    const c = [
      { node: 'a', free: 1000 },
      { node: 'b', free: 3000 },
      { node: 'c', free: 3000 },
    ];
    expect(placeInstance(c, 500, () => true)).toBe('b');
    expect(placeInstance(c, 500, (n) => n !== 'b')).toBe('c');
    expect(placeInstance(c, 2000, (n) => n === 'a')).toBeNull();
    expect(placeInstance(c, 5000, () => true)).toBeNull();
  });

  test('summaries name the count, the node, the mode and how many at a time', () => {
    const req = NodeMigrateInputSchema.parse({ node: 'node3', mode: 'live' });
    expect(nodeOperationSummary('node-migrate', req, 12, { maxConcurrent: 5, maxOutgoing: 2, maxIncoming: 2 })).toBe(
      'Migrate 12 instances off node3, live, ≤2 at a time',
    );
    const f = NodeFailoverInputSchema.parse({ node: 'node3', ignoreConsistency: true, dryRun: true });
    expect(nodeOperationSummary('node-failover', f, 1, null)).toBe('Fail over 1 instance off node3, ignoring consistency (dry run)');
  });
});

describe('the edges the mutation tests found', () => {
  test('live alone, a target other than the node, and a shutdown timeout under the bound are accepted', () => {
    expect(NodeMigrateInputSchema.parse({ node: 'node1', live: false })).toMatchObject({ live: false });
    expect(NodeMigrateInputSchema.parse({ node: 'node1', mode: 'non-live' })).toMatchObject({ mode: 'non-live' });
    expect(NodeMigrateInputSchema.parse({ node: 'node1', targetNode: 'node3' })).toMatchObject({ targetNode: 'node3' });
    expect(NodeFailoverInputSchema.parse({ node: 'node1', shutdownTimeout: 5 })).toMatchObject({ shutdownTimeout: 5 });
    expect(NodeFailoverInputSchema.safeParse({ node: 'node1', shutdownTimeout: 99_999_999_999 }).success).toBe(false);
  });

  test('a refusal names the field it is about', () => {
    const both = NodeMigrateInputSchema.safeParse({ node: 'node1', mode: 'live', live: true });
    expect(both.success ? [] : both.error.issues.map((i) => i.path)).toEqual([['mode']]);
    const self = NodeMigrateInputSchema.safeParse({ node: 'node1', targetNode: 'node1' });
    expect(self.success ? [] : self.error.issues.map((i) => i.path)).toEqual([['targetNode']]);
  });

  test('waiting, busy and running are the only states that are not final', () => {
    expect(INSTANCE_STATES.filter((s) => !isFinal(s))).toEqual(['waiting', 'busy', 'running']);
  });

  test('a configuration from before the evacuation defaults gets the built-in ones', () => {
    const old = { ...cfg, cluster: { ...cfg.cluster } };
    delete (old.cluster as { evacuation?: unknown }).evacuation;
    expect(effectiveLimits(old, { maxConcurrent: 9 })).toEqual({ maxConcurrent: 9, maxOutgoing: 2, maxIncoming: 2 });
  });

  test('names sort numerically (web9 before web10), and a non-mirrored instance has no target', () => {
    const w = cfg.instances.web1!;
    const many = { ...cfg, instances: { web10: { ...w, name: 'web10' }, web9: { ...w, name: 'web9' }, web1: w } };
    expect(primaryInstances(many, 'node1').map((i) => i.name)).toEqual(['web1', 'web9', 'web10']);
    expect(knownTarget({ ...cfg.instances.files1!, diskTemplate: 'plain' }, 'node3')).toBeNull();
  });

  test('the outgoing limit counts only the operations leaving the same node; an exact memory fit is placed', () => {
    const others = [
      { source: 'n5', target: 'n2' },
      { source: 'n6', target: 'n3' },
    ];
    expect(fitsLimits(L, others, 'n1', 'n4')).toBe(true);
    expect(placeInstance([{ node: 'a', free: 512 }], 512, () => true)).toBe('a');
  });

  test('summaries: the default mode, non-live, one or unknown count, draining, a plain failover', () => {
    const lim = { maxConcurrent: 10, maxOutgoing: 3, maxIncoming: 1 };
    const def = NodeMigrateInputSchema.parse({ node: 'node3', drain: true });
    expect(nodeOperationSummary('node-migrate', def, 1, lim)).toBe('Migrate 1 instance off node3, default mode, ≤3 at a time, draining it');
    const nl = NodeMigrateInputSchema.parse({ node: 'node3', live: false });
    expect(nodeOperationSummary('node-migrate', nl, null, null)).toBe('Migrate the instances off node3, non-live');
    const l = NodeMigrateInputSchema.parse({ node: 'node3', live: true });
    expect(nodeOperationSummary('node-migrate', l, 2, null)).toBe('Migrate 2 instances off node3, live');
    const f = NodeFailoverInputSchema.parse({ node: 'node3' });
    expect(nodeOperationSummary('node-failover', f, 2, null)).toBe('Fail over 2 instances off node3');
  });
});
