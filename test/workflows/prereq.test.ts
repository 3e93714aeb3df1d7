/**
 * Every prerequisite refusal, through the workflow on a real server: Ganeti's error code and message,
 * nothing changed on the cluster, no reservation left behind.
 */
import { describe, expect, test } from 'vitest';
import { orchestratorQueue, workflowIdFor } from '../../domain/naming.js';
import { toOperationError, OperationError } from '../../client/api.js';
import { checkInvariants } from '../../adapters/sim/invariants.js';
import type { MigrateInput } from '../../domain/ops.js';
import type { ClusterConfig } from '../../domain/types.js';
import type { TestCluster } from '../helpers/cluster.js';
import { configShape, hardwareShape, migrate, useHarness } from '../helpers/harness.js';
import { mutatingSteps } from '../helpers/steps.js';

const h = useHarness();

interface Case {
  name: string;
  input: MigrateInput;
  configure?: (cfg: ClusterConfig) => void;
  arrange?: (c: TestCluster) => Promise<void>;
  code: string | undefined;
  message: string;
}

const cases: Case[] = [
  { name: 'unknown instance', input: { instance: 'nosuch' }, code: 'unknown_entity', message: "Instance 'nosuch' not known" },
  {
    name: 'unknown target node',
    input: { instance: 'files1', targetNode: 'node9' },
    code: 'unknown_entity',
    message: "Node 'node9' not known",
  },
  {
    name: 'forthcoming instance',
    input: { instance: 'web1' },
    configure: (cfg) => void (cfg.instances.web1!.forthcoming = true),
    code: undefined,
    message: 'forthcoming instances not supported for this operation',
  },
  {
    name: 'disk layout without mirroring',
    input: { instance: 'web1' },
    configure: (cfg) => {
      const i = cfg.instances.web1!;
      i.diskTemplate = 'plain';
      i.disks = i.disks.map(({ drbd: _d, ...d }) => d);
    },
    code: 'wrong_state',
    message: "Instance's disk layout 'plain' does not allow migrations",
  },
  {
    name: 'DRBD to a node other than its secondary',
    input: { instance: 'web1', targetNode: 'node3' },
    code: 'wrong_input',
    message: 'Instances with disk types drbd cannot be migrated to arbitrary nodes (neither an iallocator nor a target node can be passed)',
  },
  {
    name: 'sharedfile to its own primary',
    input: { instance: 'files1', targetNode: 'node2' },
    code: 'wrong_state',
    message: 'Cannot migrate instance files1 to its primary (node2)',
  },
  {
    name: 'sharedfile without target and without a default allocator',
    input: { instance: 'files1' },
    configure: (cfg) => void (cfg.cluster.defaultIallocator = null),
    code: 'wrong_input',
    message:
      'No iallocator or node given and no cluster-wide default iallocator found; please specify either an iallocator or a node, or set a cluster-wide default iallocator',
  },
  {
    name: 'instance policy of another node group',
    input: { instance: 'web1' },
    configure: (cfg) => {
      cfg.nodes.node2!.group = 'small';
      cfg.cluster.groups.small = {
        name: 'small',
        ipolicy: { minmem: 0, maxmem: 512, maxVcpus: 64, diskTemplates: ['drbd', 'sharedfile', 'plain', 'file'] },
      };
    },
    code: 'wrong_input',
    message: "Instance does not meet target node group's (small) instance policy: memory-size value 512-1024 is not in range [0, 512]",
  },
  {
    name: 'not enough memory on the target',
    input: { instance: 'web1' },
    configure: (cfg) => void (cfg.nodes.node2!.memoryTotal = 1024 + 2048 + 300),
    code: 'insufficient_resources',
    message: 'Not enough memory on node node2 for migrating instance web1: needed 512 MiB, available 300 MiB',
  },
  {
    name: 'target node marked offline',
    input: { instance: 'web1' },
    configure: (cfg) => void (cfg.nodes.node2!.offline = true),
    code: 'environment_error',
    message: "Can't get data from node node2: Node is marked offline",
  },
  {
    name: 'target node not answering node_info',
    input: { instance: 'web1' },
    arrange: (c) => c.addFault({ rpc: 'node_info', node: 'node2', mode: 'permanent' }),
    code: 'environment_error',
    message: "Can't get data from node node2: injected failure in node_info on node2",
  },
  {
    name: 'bridge missing on the target',
    input: { instance: 'web1' },
    arrange: (c) => c.hw.mutate((s) => void (s.nodes.node2!.bridges = ['br1'])),
    code: 'environment_error',
    message: "Error checking bridges on destination node 'node2': Missing bridges br0",
  },
  {
    name: 'drained target',
    input: { instance: 'web1' },
    configure: (cfg) => void (cfg.nodes.node2!.drained = true),
    code: 'wrong_state',
    message: "Can't use drained node node2",
  },
  {
    name: 'instance not running',
    input: { instance: 'web1' },
    arrange: (c) => c.inject('web1', 'node1', 'stopped'),
    code: 'wrong_state',
    message: "Can't migrate, please use failover: Instance web1 is not running",
  },
  {
    name: 'runtime memory cannot be read',
    input: { instance: 'web1' },
    arrange: (c) => c.addFault({ rpc: 'instance_info', node: 'node1', mode: 'permanent' }),
    code: undefined,
    message: 'Error checking instance on node node1: injected failure in instance_info on node1',
  },
];

describe('prerequisite refusals change nothing', () => {
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, k) => {
    const { c } = await h.cluster(k.configure ? { configure: k.configure } : {});
    await k.arrange?.(c);
    const cfg0 = configShape(c);
    const hw0 = hardwareShape(c);
    const r = await migrate(h.env(), c, k.input);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.type).toBe('PrereqFailed');
    expect(r.error.code).toBe(k.code);
    expect(r.error.message).toBe(k.message);
    expect(configShape(c)).toEqual(cfg0);
    expect(hardwareShape(c)).toEqual(hw0);
    expect(c.cfg().reservations).toEqual({});
    expect(mutatingSteps(c, k.input.instance)).toEqual([]);
  });

  test('an instance policy violation is only a warning with ignoreIpolicy', async () => {
    const { c } = await h.cluster({ configure: cases.find((x) => x.name === 'instance policy of another node group')!.configure! });
    const r = await migrate(h.env(), c, { instance: 'web1', ignoreIpolicy: true });
    expect(r.ok && r.result.feedback[0]).toBe(
      " - WARNING: Instance does not meet target node group's (small) instance policy: memory-size value 512-1024 is not in range [0, 512]",
    );
    expect(checkInvariants({ kind: 'migrated', source: 'node1', target: 'node2' }, c.instance('web1'), c.status('web1'))).toEqual([]);
  });
});

describe('input validation', () => {
  test('mode and live together are refused by the client', async () => {
    const { c } = await h.cluster();
    const r = await migrate(h.env(), c, { instance: 'web1', mode: 'live', live: true });
    expect(!r.ok && r.error).toMatchObject({
      type: 'PrereqFailed',
      code: 'wrong_input',
      message: "mode: Only one of the 'live' and 'mode' parameters are accepted",
    });
  });

  test.each([
    [{ instance: 'web1', bogus: 1 }, 'Unrecognized key: "bogus"'],
    [{ instance: 'no such name!' }, 'instance: must be a host-style name'],
    [{ instance: 'web1', mode: 'fast' }, 'mode: Invalid option'],
    [{ instance: 'web1', mode: 'live', live: false }, "mode: Only one of the 'live' and 'mode' parameters are accepted"],
  ])('the workflow itself refuses bad input started from elsewhere (%j)', async (input, message) => {
    const { c } = await h.cluster();
    const cfg0 = configShape(c);
    const handle = await h.env().client.workflow.start('migrateInstanceWorkflow', {
      args: [input],
      taskQueue: orchestratorQueue(c.name),
      workflowId: workflowIdFor('web1'),
    });
    const e = await handle.result().then(
      () => null,
      (err: unknown) => toOperationError(err),
    );
    expect(e).toBeInstanceOf(OperationError);
    expect(e).toMatchObject({ type: 'PrereqFailed', code: 'wrong_input' });
    expect((e as OperationError).message).toContain(message);
    expect(configShape(c)).toEqual(cfg0);
  });
});
