/**
 * Fault injection, addressed by Ganeti RPC name (and optionally node): `transient` (the call does not
 * get through, K times), `permanent` (the node reports a failure), `hang` (the call never answers), `hang-after` (the call takes
 * effect on the node, then never answers: its answer is lost, as when the agent dies right after).
 * Faults live in the hardware document, so they hold across processes and crashes, and every hit is
 * counted and logged. `withFaults` wraps any node backend (simulated or QEMU).
 */
import { NodeRpcError, rpcName, type NodeRpc } from '../../domain/ports.js';
import { SimHardware } from './hardware.js';
import type { SimFault, SimState } from './state.js';

export const FAULT_MODES = ['transient', 'permanent', 'hang', 'hang-after'] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

export interface FaultSpec {
  rpc: string;
  node?: string | undefined;
  mode: FaultMode;
  /** How many times it applies (default: 1 for transient, unlimited otherwise). */
  times?: number | undefined;
  /** Calls to let through before it applies (default 0). */
  skip?: number | undefined;
}

export function addFault(s: SimState, spec: FaultSpec): SimFault {
  const f: SimFault = {
    id: s.nextFaultId++,
    rpc: spec.rpc,
    mode: spec.mode,
    skip: spec.skip ?? 0,
    remaining: spec.times ?? (spec.mode === 'transient' ? 1 : null),
    hits: 0,
  };
  if (spec.node) f.node = spec.node;
  s.faults.push(f);
  return f;
}

/** Consumes the first matching active fault for one call, if any. */
export function takeFault(s: SimState, rpc: string, node: string): SimFault | null {
  for (const f of s.faults) {
    if (f.rpc !== rpc || (f.node && f.node !== node) || f.remaining === 0) continue;
    if (f.skip > 0) {
      f.skip--;
      return null;
    }
    f.hits++;
    if (f.remaining !== null) f.remaining--;
    return f;
  }
  return null;
}

export interface FaultOptions {
  /** What a hanging call awaits (the activity layer passes its cancellation). */
  hang?: () => Promise<never>;
}

const never = (): Promise<never> => new Promise<never>(() => undefined);

/** Wraps a node backend so every RPC first consults the fault table. */
export function withFaults(port: NodeRpc, hw: SimHardware, opts: FaultOptions = {}): NodeRpc {
  return new Proxy(port, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop !== 'string' || typeof value !== 'function') return value;
      const rpc = rpcName(prop);
      return async (...args: unknown[]) => {
        if (hw.exists()) {
          const instance = (args[0] as { name?: unknown } | undefined)?.name;
          const fault = await hw.mutateNodes([], (s) => {
            const f = takeFault(s, rpc, port.node);
            if (f) {
              SimHardware.log(s, {
                node: port.node,
                rpc,
                ...(typeof instance === 'string' ? { instance } : {}),
                outcome: 'fault',
                detail: `${f.mode} fault #${f.id}`,
              });
            }
            return f;
          });
          if (fault?.mode === 'transient') throw new NodeRpcError(`injected transient fault in ${rpc} on ${port.node}`, true);
          if (fault?.mode === 'permanent') throw new NodeRpcError(`injected failure in ${rpc} on ${port.node}`);
          if (fault?.mode === 'hang') await (opts.hang ?? never)();
          if (fault?.mode === 'hang-after') {
            await (value as (...a: unknown[]) => unknown).apply(target, args);
            await (opts.hang ?? never)();
          }
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/**
 * The simulated node's side of running hooks: a powered-off node answers nothing, and faults can be
 * injected under Ganeti's RPC name `hooks_runner`. The scripts themselves run for real.
 */
export function withSimHooks<H extends { run: (...a: never[]) => Promise<unknown> }>(hooks: H, hw: SimHardware, node: string): H {
  return {
    ...hooks,
    run: async (...args: Parameters<H['run']>) => {
      if (hw.exists()) {
        const { fault, powered } = await hw.mutateNodes([node], (s) => {
          const powered = s.nodes[node]?.powered !== false;
          const f = powered ? takeFault(s, 'hooks_runner', node) : null;
          if (f) SimHardware.log(s, { node, rpc: 'hooks_runner', outcome: 'fault', detail: `${f.mode} fault #${f.id}` });
          return { fault: f, powered };
        });
        if (!powered) throw new NodeRpcError(`node ${node} does not answer (powered off)`, true);
        if (fault?.mode === 'transient') throw new NodeRpcError(`injected transient fault in hooks_runner on ${node}`, true);
        if (fault?.mode === 'permanent') throw new NodeRpcError(`injected failure in hooks_runner on ${node}`);
        if (fault?.mode === 'hang') await new Promise<never>(() => undefined);
        if (fault?.mode === 'hang-after') {
          await hooks.run(...args);
          await new Promise<never>(() => undefined);
        }
      }
      return hooks.run(...args);
    },
  } as H;
}
