/**
 * Ganeti's hooks (docs/behaviour.md §9 "Hooks"): which nodes run them, and the environment, as pure
 * functions.
 *
 * Decision on the post-phase quirk (docs/behaviour.md §9.2 "Environment"; recorded in §13.1
 * "Deliberate changes"): Ganeti rebuilds the post environment from the reloaded instance, so
 * GANETI_POST_OLD_PRIMARY and GANETI_POST_NEW_PRIMARY both name the new primary. We fix it: the
 * post-phase OLD_/NEW_ PRIMARY and SECONDARY keys describe the move that happened, exactly as in the
 * pre phase (the instance keys, e.g. GANETI_POST_INSTANCE_PRIMARY, do come from the reloaded
 * instance). Scripts written for Ganeti that read the pre-phase keys work unchanged.
 */
import { filledHvParams, isDrbd, secondaryNodes } from './instance.js';
import type { ClusterSnapshot, Instance } from './types.js';

export const HOOK_PATHS = ['instance-migrate', 'instance-failover', 'instance-start', 'instance-stop'] as const;
export type HookPath = (typeof HOOK_PATHS)[number];
export const HOOK_PHASES = ['pre', 'post'] as const;
export type HookPhase = (typeof HOOK_PHASES)[number];

export const HOOK_OP_CODES: Record<HookPath, string> = {
  'instance-migrate': 'OP_INSTANCE_MIGRATE',
  'instance-failover': 'OP_INSTANCE_FAILOVER',
  'instance-start': 'OP_INSTANCE_STARTUP',
  'instance-stop': 'OP_INSTANCE_SHUTDOWN',
};

/** The PATH every hook gets; nothing else is inherited. */
export const HOOK_PATH_ENV = '/sbin:/bin:/usr/sbin:/usr/bin';

/** Script names Ganeti runs (others are skipped). */
export const HOOK_NAME_RE = /^[a-zA-Z0-9_-]+$/;

/**
 * The environment keys a hook may be given: `GANETI_` and upper-case letters, digits and `_` — plus,
 * as in Ganeti, a lower-case parameter name at the end of the `_BE_<param>` and `_HV_<param>` keys
 * (`GANETI_INSTANCE_BE_maxmem`). Nothing else (no `LD_PRELOAD`, no `PATH`) reaches a script; the
 * node adds PATH (HOOK_PATH_ENV) and GANETI_DATA_DIR itself.
 */
export const HOOK_ENV_KEY_RE = /^GANETI_[A-Z0-9_]+(?:_(?:BE|HV)_[a-z][a-z0-9_]*)?$/;

export type HookValue = string | number | boolean | null | undefined;

/** Python's str() of a value, as Ganeti puts it into the environment. */
export function pyStr(v: HookValue): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return String(v);
}

const dedupe = (nodes: string[]): string[] => [...new Set(nodes)];

/**
 * docs/behaviour.md §9.1 "Which hooks run where": migrate: master, primary, secondaries, target
 * (pre = post); failover: pre excludes the source, post adds it; start and stop: master, primary and
 * secondaries (pre = post; `source` and `target` are the primary).
 */
export function hookNodes(
  path: HookPath,
  snap: ClusterSnapshot,
  inst: Instance,
  source: string,
  target: string,
): { pre: string[]; post: string[] } {
  const master = snap.cluster.masterNode;
  const secondaries = secondaryNodes(inst);
  if (path === 'instance-start' || path === 'instance-stop') {
    const nodes = dedupe([master, inst.primaryNode, ...secondaries]);
    return { pre: nodes, post: nodes };
  }
  if (path === 'instance-migrate') {
    const nodes = dedupe([master, inst.primaryNode, ...secondaries, target]);
    return { pre: nodes, post: nodes };
  }
  const pre = dedupe([master, ...secondaries, target]);
  return { pre, post: dedupe([...pre, source]) };
}

/** BuildInstanceHookEnvByObject: the instance keys (without prefix). */
export function instanceHookEnv(snap: ClusterSnapshot, inst: Instance): Record<string, HookValue> {
  const env: Record<string, HookValue> = {
    OP_TARGET: inst.name,
    INSTANCE_NAME: inst.name,
    INSTANCE_PRIMARY: inst.primaryNode,
    INSTANCE_SECONDARIES: secondaryNodes(inst).join(' '),
    INSTANCE_OS_TYPE: inst.os,
    INSTANCE_STATUS: inst.adminState,
    INSTANCE_MINMEM: inst.beparams.minmem,
    INSTANCE_MAXMEM: inst.beparams.maxmem,
    INSTANCE_MEMORY: inst.beparams.maxmem,
    INSTANCE_VCPUS: inst.beparams.vcpus,
    INSTANCE_DISK_TEMPLATE: inst.diskTemplate,
    INSTANCE_HYPERVISOR: inst.hypervisor,
    INSTANCE_NIC_COUNT: inst.nics.length,
    INSTANCE_DISK_COUNT: inst.disks.length,
    INSTANCE_TAGS: inst.tags.join(' '),
  };
  inst.nics.forEach((n, i) => {
    const p = `INSTANCE_NIC${i}_`;
    if (n.name) env[`${p}NAME`] = n.name;
    env[`${p}UUID`] = n.uuid;
    env[`${p}IP`] = n.ip ?? '';
    env[`${p}MAC`] = n.mac;
    env[`${p}MODE`] = n.mode;
    env[`${p}LINK`] = n.link;
    env[`${p}VLAN`] = n.vlan;
    if (n.mode === 'bridged' || n.mode === 'openvswitch') env[`${p}BRIDGE`] = n.link;
  });
  inst.disks.forEach((d, i) => {
    const p = `INSTANCE_DISK${i}_`;
    if (d.name) env[`${p}NAME`] = d.name;
    env[`${p}UUID`] = d.uuid;
    env[`${p}SIZE`] = d.size;
    env[`${p}MODE`] = d.mode;
    env[`${p}DEV_TYPE`] = inst.diskTemplate;
    if (d.drbd) {
      // DRBD's logical id keeps the creation order (it is not rewritten by migrations), as in Ganeti.
      env[`${p}PNODE`] = d.drbd.nodes[0];
      env[`${p}SNODE`] = d.drbd.nodes[1];
      env[`${p}PORT`] = d.drbd.port;
      env[`${p}PMINOR`] = d.drbd.minors[0];
      env[`${p}SMINOR`] = d.drbd.minors[1];
      // The backing LVs (not modelled separately): Ganeti's naming on the default volume group.
      env[`${p}DATA_VG`] = 'xenvg';
      env[`${p}DATA_ID`] = `${d.uuid}.disk${i}_data`;
      env[`${p}META_VG`] = 'xenvg';
      env[`${p}META_ID`] = `${d.uuid}.disk${i}_meta`;
    } else if (inst.diskTemplate === 'sharedfile' || inst.diskTemplate === 'file') {
      env[`${p}DRIVER`] = 'loop';
      env[`${p}ID`] = d.path ?? '';
    } else if (
      // Stryker disable next-line ConditionalExpression: equivalent: plain is the only template left here (a drbd disk always has a logical id: InstanceSchema refuses one without)
      inst.diskTemplate === 'plain'
    ) {
      env[`${p}VG`] = 'xenvg';
      env[`${p}ID`] = `${d.uuid}.disk${i}`;
    }
  });
  for (const [k, v] of Object.entries(inst.beparams)) env[`INSTANCE_BE_${k}`] = v;
  for (const [k, v] of Object.entries(filledHvParams(snap, inst))) env[`INSTANCE_HV_${k}`] = v;
  return env;
}

export interface MigrateHookArgs {
  path: 'instance-migrate';
  live: boolean;
  cleanup: boolean;
  allowRuntimeChanges: boolean;
}
export interface FailoverHookArgs {
  path: 'instance-failover';
  ignoreConsistency: boolean;
  shutdownTimeout: number;
}
/** LUInstanceStartup's keys: FORCE. */
export interface StartHookArgs {
  path: 'instance-start';
  force: boolean;
}
/** LUInstanceShutdown's keys: TIMEOUT. */
export interface StopHookArgs {
  path: 'instance-stop';
  timeout: number;
}
export type HookArgs = MigrateHookArgs | FailoverHookArgs | StartHookArgs | StopHookArgs;

/** The LU's BuildHooksEnv: instance keys plus the operation keys (without prefix). */
export function operationHookEnv(
  snap: ClusterSnapshot,
  inst: Instance,
  move: { source: string; target: string },
  op: HookArgs,
): Record<string, HookValue> {
  const drbd = isDrbd(inst);
  const env = instanceHookEnv(snap, inst);
  if (op.path === 'instance-start') return { FORCE: op.force, ...env };
  if (op.path === 'instance-stop') return { ...env, TIMEOUT: op.timeout };
  const moveKeys = {
    OLD_PRIMARY: move.source,
    NEW_PRIMARY: move.target,
    OLD_SECONDARY: drbd ? move.target : '',
    NEW_SECONDARY: drbd ? move.source : '',
  };
  if (op.path === 'instance-migrate') {
    return { ...env, MIGRATE_LIVE: op.live, MIGRATE_CLEANUP: op.cleanup, ...moveKeys, ALLOW_RUNTIME_CHANGES: op.allowRuntimeChanges };
  }
  return {
    ...env,
    IGNORE_CONSISTENCY: op.ignoreConsistency,
    SHUTDOWN_TIMEOUT: op.shutdownTimeout,
    ...moveKeys,
    FAILOVER_CLEANUP: false,
  };
}

/** The hooks master's common keys (already prefixed). GANETI_DATA_DIR is added by the node that runs the hook. */
export function commonHookEnv(snap: ClusterSnapshot, path: HookPath, phase: HookPhase): Record<string, string> {
  return {
    GANETI_HOOKS_VERSION: '2',
    GANETI_OP_CODE: HOOK_OP_CODES[path],
    GANETI_HOOKS_PHASE: phase,
    GANETI_HOOKS_PATH: path,
    GANETI_OBJECT_TYPE: 'INSTANCE',
    GANETI_CLUSTER: snap.cluster.name,
    GANETI_MASTER: snap.cluster.masterNode,
  };
}

const prefixed = (env: Record<string, HookValue>, prefix: string): Record<string, string> =>
  Object.fromEntries(Object.entries(env).map(([k, v]) => [`${prefix}${k}`, pyStr(v)]));

/** The environment of one phase: pre = GANETI_<pre keys>; post = pre keys plus GANETI_POST_<post keys>. */
export function hookEnvironment(
  snap: ClusterSnapshot,
  path: HookPath,
  phase: HookPhase,
  preEnv: Record<string, HookValue>,
  postEnv?: Record<string, HookValue>,
): Record<string, string> {
  return {
    ...commonHookEnv(snap, path, phase),
    ...prefixed(preEnv, 'GANETI_'),
    ...(phase === 'post' && postEnv ? prefixed(postEnv, 'GANETI_POST_') : {}),
  };
}

export interface HookScriptResult {
  /** "<path>-<phase>.d/<name>" as Ganeti reports it. */
  script: string;
  status: 'success' | 'fail' | 'skip';
  output: string;
}
