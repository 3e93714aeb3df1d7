/**
 * The QEMU driver's information RPCs: node_info, instance_list, instance_info, instance_migratable
 * and migration_info. Each observes the real processes and reports what it saw.
 */
import type { RpcInstance } from '../../domain/instance.js';
import type { InstanceInfoPayload, NodeInfoPayload } from '../../domain/prereq.js';
import { fail, type QemuFrame } from './frame.js';
import { qemuVersion } from './launch.js';
import { migrationInfoOf, parseRuntime } from './runtime.js';
import { observedProcess } from './status.js';

export async function nodeInfo(f: QemuFrame): Promise<NodeInfoPayload> {
  return f.rpc('node_info', undefined, undefined, 'Failed to get node information: ', async () => {
    const n = f.facts();
    return {
      memoryTotal: n.memoryTotal,
      memoryDom0: n.dom0Memory,
      memoryFree: Math.max(0, f.freeMemory()),
      hvVersion: qemuVersion(f.binary),
    };
  });
}

/** The instances this node's QEMU processes run (incoming ones included), each confirmed over QMP. */
export async function instanceList(f: QemuFrame): Promise<string[]> {
  return f.rpc(
    'instance_list',
    undefined,
    undefined,
    'Failed to list instances: ',
    async (ctx) => {
      const names: string[] = [];
      for (const name of f.files.metaNames()) {
        const o = await f.exclusive(name, () => f.observe(name));
        ctx.mirror(name, o);
        if (o) names.push(name);
      }
      ctx.edit({ kind: 'keep-only', instances: names });
      return names;
    },
    true,
  );
}

export async function instanceInfo(f: QemuFrame, inst: RpcInstance): Promise<InstanceInfoPayload | null> {
  return f.rpc(
    'instance_info',
    inst.name,
    undefined,
    'Failed to get instance information: ',
    async (ctx) => {
      const o = await f.observe(inst.name);
      ctx.mirror(inst.name, o);
      if (!o) return null;
      return { state: observedProcess(o).state, memory: o.meta.memory, vcpus: o.meta.vcpus };
    },
    true,
  );
}

export async function instanceMigratable(f: QemuFrame, inst: RpcInstance): Promise<void> {
  return f.rpc(
    'instance_migratable',
    inst.name,
    undefined,
    '',
    async (ctx) => {
      const o = await f.observe(inst.name);
      ctx.mirror(inst.name, o);
      if (!o || o.status === 'inmigrate') fail(`Instance ${inst.name} is not running`);
    },
    true,
  );
}

export async function migrationInfo(f: QemuFrame, inst: RpcInstance): Promise<string> {
  return f.rpc(
    'migration_info',
    inst.name,
    undefined,
    'Failed to fetch migration information: ',
    async (ctx) => {
      const o = await f.observe(inst.name);
      ctx.mirror(inst.name, o);
      if (!o || o.status === 'inmigrate') return fail(`Failed to fetch migration information: instance ${inst.name} is not running`);
      // Normalised: never a command line (the target builds its own), whatever format the record has.
      return migrationInfoOf(parseRuntime(o.meta.runtime));
    },
    true,
  );
}
