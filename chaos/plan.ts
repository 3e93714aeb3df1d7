/**
 * What one chaos run does, drawn from its seed: the operation, the transient RPC faults, and which
 * process is SIGKILLed when (after how many state-changing RPCs of the operation) and for how long.
 * The same seed gives the same plan; the run's timing still varies with the machine.
 */

/** murmur3's finalizer: consecutive seeds become unrelated starting states. */
function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** mulberry32: a small, good-enough seeded PRNG (32-bit state). */
export function prng(seed: number): () => number {
  let a = mix(seed >>> 0);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const OPERATIONS = ['migrate-live', 'migrate-non-live', 'failover-up', 'failover-down', 'migrate-fail-cleanup'] as const;
export type OperationKind = (typeof OPERATIONS)[number];

export const KILL_KINDS = ['orchestrator', 'agent', 'server'] as const;
export type KillKind = (typeof KILL_KINDS)[number];

export interface PlannedFault {
  rpc: string;
  node?: string;
  mode: 'transient' | 'permanent';
  times: number;
  skip: number;
}

export interface RunPlan {
  seed: number;
  operation: OperationKind;
  instance: string;
  source: string;
  target: string;
  faults: PlannedFault[];
  kill: {
    kind: KillKind;
    /** For an agent: its node. */
    node?: string;
    /** Kill after this many state-changing RPCs of the operation (then `jitterMs` more). */
    afterSteps: number;
    jitterMs: number;
    /** How long the process stays dead. */
    downMs: number;
  };
}

/** The DRBD instances of the default cluster (name, primary, secondary). */
export const DRBD_INSTANCES: Array<[string, string, string]> = [
  ['web1', 'node1', 'node2'],
  ['web2', 'node2', 'node3'],
  ['web3', 'node3', 'node1'],
];

/** State-changing RPCs each operation sends (transient faults pick from these). */
const RPCS: Record<OperationKind, string[]> = {
  'migrate-live': ['blockdev_close', 'drbd_disconnect_net', 'drbd_attach_net', 'blockdev_open', 'accept_instance', 'instance_migrate'],
  'migrate-non-live': ['drbd_attach_net', 'blockdev_open', 'accept_instance', 'instance_migrate', 'instance_finalize_migration_dst'],
  'failover-up': ['instance_shutdown', 'blockdev_shutdown', 'blockdev_assemble', 'instance_start'],
  'failover-down': ['instance_shutdown', 'blockdev_shutdown'],
  'migrate-fail-cleanup': ['drbd_disconnect_net', 'drbd_attach_net', 'blockdev_close'],
};

/** About how many state-changing RPCs each operation sends (the kill lands within them). */
const STEPS: Record<OperationKind, number> = {
  'migrate-live': 16,
  'migrate-non-live': 16,
  'failover-up': 7,
  'failover-down': 3,
  'migrate-fail-cleanup': 16,
};

/**
 * Where the failed migration of `migrate-fail-cleanup` fails, left half-done for `--cleanup`: M6
 * (DRBD dual-master), M7 (opening the disks), or M11 (finalizing the source after the transfer
 * completed: the target holds the real guest from then on).
 */
const FAILURE_POINTS: Array<{ rpc: string; on: 'source' | 'target' | 'either' }> = [
  { rpc: 'drbd_attach_net', on: 'either' },
  { rpc: 'blockdev_open', on: 'either' },
  { rpc: 'instance_finalize_migration_src', on: 'source' },
];

export interface PlanOptions {
  /** Restrict the operations (the QEMU schedule skips none, but a test may). */
  operations?: readonly OperationKind[];
  /** Restrict the instances (the QEMU cluster keeps only web1). */
  instances?: Array<[string, string, string]>;
}

export function planRun(seed: number, o: PlanOptions = {}): RunPlan {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const operation = pick(o.operations ?? OPERATIONS);
  const [instance, source, target] = pick(o.instances ?? DRBD_INSTANCES);
  const faults: PlannedFault[] = [];
  if (operation === 'migrate-fail-cleanup') {
    const at = pick(FAILURE_POINTS);
    const node = at.on === 'source' ? source : at.on === 'target' ? target : pick([source, target]);
    faults.push({ rpc: at.rpc, node, mode: 'permanent', times: 1, skip: 0 });
  }
  const transient = int(0, 2);
  for (let i = 0; i < transient; i++) {
    // On whichever node calls it first (one of these RPCs may go to either node, or both).
    faults.push({ rpc: pick(RPCS[operation]), mode: 'transient', times: int(1, 2), skip: int(0, 1) });
  }
  const kind = pick(KILL_KINDS);
  const kill: RunPlan['kill'] = {
    kind,
    afterSteps: int(0, STEPS[operation] - 1),
    jitterMs: int(0, 400),
    downMs: kind === 'server' ? int(300, 2000) : int(0, 1500),
  };
  if (kind === 'agent') kill.node = pick([source, target]);
  return { seed, operation, instance, source, target, faults, kill };
}

/** One line describing a plan. */
export function describePlan(p: RunPlan): string {
  const faults = p.faults.map((f) => `${f.mode} ${f.rpc}${f.node ? `@${f.node}` : ''}×${f.times}`).join(', ') || 'none';
  const who = p.kill.kind === 'agent' ? `agent@${p.kill.node}` : p.kill.kind;
  return `${p.operation} ${p.instance} (${p.source}→${p.target}); faults: ${faults}; kill ${who} after ${p.kill.afterSteps} steps +${p.kill.jitterMs} ms, down ${p.kill.downMs} ms`;
}
