/** The pure parts of the node operations: input schemas, limits, the scheduler's fit, placement, summaries. */
import { describe, expect, test } from 'vitest';
import { defaultClusterConfig } from '../../../adapters/sim/cluster.js';
import {
  effectiveLimits,
  fitsLimits,
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
