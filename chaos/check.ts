/**
 * The chaos checker: after an operation has ended, the cluster must be whole again. Reuses the
 * behaviour spec's invariant checker (adapters/sim/invariants.ts) and adds what a crash could leak:
 * memory reservations, hypervisor processes (incoming, paused or running copies) off the primary,
 * DRBD not back to connected single-master with up-to-date data, and OS processes left behind.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { checkInvariants, type InvariantCase } from '../adapters/sim/invariants.js';
import type { InstanceHwDetail } from '../adapters/sim/cluster.js';
import { SA } from '../workflows/messages.js';
import type { CrashCluster } from './cluster.js';

export type Ended = { ok: true; outcome: string } | { ok: false; type: string; message: string; needsOperator: boolean };

/**
 * Waits for a workflow to end, across server restarts and unreachable periods (connection errors are
 * retried until the deadline). Null if it did not end in time.
 */
export async function waitForEnd(client: Client, handle: WorkflowHandle, deadline: number): Promise<Ended | null> {
  for (;;) {
    if (Date.now() > deadline) return null;
    try {
      const r = (await handle.result()) as { outcome: string };
      return { ok: true, outcome: r.outcome };
    } catch (e) {
      if (e instanceof WorkflowFailedError) {
        const needsOperator = await needsOperatorOf(client, handle);
        const c = e.cause as { type?: string; message?: string } | undefined;
        return { ok: false, type: c?.type ?? e.name, message: c?.message ?? e.message, needsOperator };
      }
      await sleep(300); // the server is down or restarting
    }
  }
}

async function needsOperatorOf(client: Client, handle: WorkflowHandle): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    try {
      const d = await client.workflow
        .getHandle(handle.workflowId, (handle as { firstExecutionRunId?: string }).firstExecutionRunId)
        .describe();
      return d.typedSearchAttributes.get(SA.needsOperator) ?? false;
    } catch {
      await sleep(300);
    }
  }
  return false;
}

const resyncing = (hw: InstanceHwDetail): boolean =>
  hw.disks.some((d) => Object.values(d.nodes).some((n) => n.connection === 'SyncSource' || n.connection === 'SyncTarget'));

/** Waits (bounded) until no DRBD device of the instance resyncs: a failover does not wait for it. */
export async function settle(c: CrashCluster, instance: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (resyncing(c.status(instance)) && Date.now() < deadline) await sleep(200);
}

/** The instance at rest on its configured primary (running if marked up), DRBD connected, single-master, up to date. */
export function steadyViolations(c: CrashCluster, instance: string): string[] {
  const inst = c.instance(instance);
  if (inst.adminState !== 'up' && !inst.disksActive) {
    const hw = c.status(instance);
    return hw.runningOn.length ? [`${instance}: marked ${inst.adminState} but runs on ${hw.runningOn.join(', ')}`] : [];
  }
  return checkInvariants({ kind: 'cleaned-up' }, inst, c.status(instance)).map((v) => `${instance}: ${v}`);
}

/** The behaviour spec's invariants for how the operation ended, plus rest state for an up instance. */
export function outcomeViolations(c: CrashCluster, instance: string, kase: InvariantCase): string[] {
  const inst = c.instance(instance);
  const v = checkInvariants(kase, inst, c.status(instance)).map((x) => `${instance}: ${x}`);
  if (inst.adminState === 'up' && kase.kind !== 'cleaned-up') v.push(...steadyViolations(c, instance));
  return [...new Set(v)];
}

/** Everything a crash could leave behind in the cluster, for every instance (the operated one included). */
export function clusterViolations(c: CrashCluster, operated: string): string[] {
  const v: string[] = [];
  const cfg = c.cfg();
  for (const [id, r] of Object.entries(cfg.reservations)) {
    v.push(`reservation left: ${id} holds ${r.memory} MiB on ${r.node} for ${r.instance} (${r.workflowId})`);
  }
  for (const inst of Object.values(cfg.instances)) {
    const hw = c.status(inst.name);
    const elsewhere = hw.runningOn.filter((n) => n !== inst.primaryNode || inst.adminState !== 'up');
    if (elsewhere.length) {
      const what = elsewhere.map((n) => `${n} (${hw.processes[n]?.state ?? '?'})`).join(', ');
      v.push(`${inst.name}: hypervisor process left on ${what}; configured primary ${inst.primaryNode}, admin ${inst.adminState}`);
    }
    if (inst.name !== operated && inst.adminState === 'up') v.push(...steadyViolations(c, inst.name));
  }
  return v;
}

/**
 * Watches the hardware while an operation runs for a memory transfer that completed (the source in
 * post-migrate state: from then on the target holds the real guest). At the end, an instance back on
 * its source means the running copy on the target was killed and a stale source resumed.
 */
export class TransferWatch {
  completedAt: number | null = null;
  private running = true;
  private readonly loop: Promise<void>;
  constructor(
    private readonly c: CrashCluster,
    private readonly instance: string,
    private readonly source: string,
    private readonly target: string,
  ) {
    this.loop = this.poll();
  }

  private async poll(): Promise<void> {
    while (this.running && this.completedAt === null) {
      try {
        if (this.c.status(this.instance).processes[this.source]?.migration === `completed to ${this.target}`) this.completedAt = Date.now();
      } catch {
        // the document is being replaced: look again
      }
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  violations(): string[] {
    if (this.completedAt === null) return [];
    const inst = this.c.instance(this.instance);
    const hw = this.c.status(this.instance);
    if (inst.primaryNode === this.target && hw.runningOn.includes(this.target)) return [];
    return [
      `${this.instance}: the memory transfer to ${this.target} had completed, yet the instance ended with primary ` +
        `${inst.primaryNode}, running on [${hw.runningOn.join(', ')}]: the running copy on ${this.target} was killed after a completed transfer`,
    ];
  }
}
