/**
 * Shared fixture for server-backed workflow tests: one dev server per file, a fresh simulated cluster
 * and workers per test, and helpers that run an operation and return its result or typed error.
 */
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { OperationError, operationResult, startMigration } from '../../client/api.js';
import type { MigrateInput, OperationResult } from '../../domain/ops.js';
import { progressQuery, type ProgressView } from '../../workflows/messages.js';
import { createTestCluster, type TestCluster, type TestClusterOptions } from './cluster.js';
import { useServer, type Workers } from './temporal.js';

export interface Harness {
  env(): TestWorkflowEnvironment;
  /** A fresh cluster with an orchestrator and all node agents running (stopped after the test). */
  cluster(opts?: TestClusterOptions): Promise<{ c: TestCluster; w: Workers }>;
}

export function useHarness(): Harness {
  const server = useServer();
  return {
    env: server.env,
    async cluster(opts = {}) {
      const c = await createTestCluster(opts);
      const w = server.workers(c);
      await w.all();
      return { c, w };
    },
  };
}

export type Outcome = { ok: true; result: OperationResult } | { ok: false; error: OperationError };

/** The error of an operation that must have failed. */
export function failure(r: Outcome): OperationError {
  if (r.ok) throw new Error(`expected a failure, got ${r.result.outcome}`);
  return r.error;
}

export async function outcomeOf(p: Promise<OperationResult>): Promise<Outcome> {
  try {
    return { ok: true, result: await p };
  } catch (e) {
    if (e instanceof OperationError) return { ok: false, error: e };
    throw e;
  }
}

export async function start(
  env: TestWorkflowEnvironment,
  c: TestCluster,
  input: MigrateInput,
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  return startMigration(env.client, input, { cluster: c.name, snapshot: c.cfg() });
}

export async function migrate(env: TestWorkflowEnvironment, c: TestCluster, input: MigrateInput): Promise<Outcome> {
  return outcomeOf(start(env, c, input).then((h) => operationResult(h)));
}

/** Polls the progress query until `pred` holds (or throws after `timeoutMs`). */
export async function waitForProgress(h: WorkflowHandle, pred: (p: ProgressView) => boolean, timeoutMs = 60_000): Promise<ProgressView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const p = await h.query(progressQuery);
      if (pred(p)) return p;
    } catch {
      // not yet answerable
    }
    if (Date.now() > deadline) throw new Error('timed out waiting for the workflow to reach the expected progress');
    await new Promise((r) => setTimeout(r, 15));
  }
}

/** The configuration without the fields every write touches. */
export function configShape(c: TestCluster): unknown {
  const { serial: _s, reservations: _r, ...rest } = c.cfg();
  return rest;
}

/** The hardware state without the log, clock and time bookkeeping. */
export function hardwareShape(c: TestCluster): unknown {
  const { log: _l, logSeq: _ls, clock: _c, advancedTo: _a, faults: _f, nextFaultId: _n, ...rest } = c.state();
  return JSON.parse(JSON.stringify(rest, (k, v) => (k === 'outOfSync' || k === 'startedAt' ? undefined : v)));
}
