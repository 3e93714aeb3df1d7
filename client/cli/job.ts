/** `job`: operations as jobs (list, info, watch, abort). */
import type { Command } from 'commander';
import { WorkflowNotFoundError } from '@temporalio/client';
import { temporalSettings, webUiUrl } from '../../connection/settings.js';
import { abortOperation, forceCompleteOperation, jobInfo, listJobs, NODE_WORKFLOW_TYPES, toWorkflowId, type JobInfo } from '../jobs.js';
import { table } from '../views.js';
import { client } from './context.js';
import { NoSuchOperationError } from './errors.js';
import { followNodeToEnd } from './node-ops.js';
import { followToEnd } from './operations.js';
import { print, printJson } from './output.js';

/** Runs `fn`; a workflow the server does not know becomes "no operation <id>" (exit 3). */
async function orNoSuchOperation<T>(id: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw new NoSuchOperationError(`no operation ${toWorkflowId(id)}`);
    throw e;
  }
}

function printJobInfo(j: JobInfo): void {
  print(`Job ${j.workflowId} (run ${j.runId}): ${j.status}${j.summary ? ` — ${j.summary}` : ''}`);
  if (j.needsOperator) print(`  NEEDS AN OPERATOR: ${j.progress?.repair ?? 'see the failure'}`);
  if (j.progress) {
    print(
      `  phase: ${j.progress.phase}, ${j.progress.percent}% of the steps done${j.progress.pointOfNoReturn ? ', past the point of no return' : ''}`,
    );
    if ('counts' in j.progress) {
      const c = j.progress.counts;
      print(`  instances: ${c.done} done, ${c.running} running, ${c.waiting} waiting, ${c.failed} failed of ${c.total}`);
    }
    if ('migrationPolicy' in j.progress && j.progress.migrationPolicy) print(`  ${j.progress.migrationPolicy.line.replace(/^\* /, '')}`);
    for (const s of j.progress.steps) print(`    [${s.state}] ${s.label}`);
  }
  for (const l of j.live) print(`  live: ${l.kind} on ${l.node}: ${l.percent === null ? '?' : l.percent.toFixed(2)} %`);
  if (j.failure) print(`  failure (${j.failure.type}): ${j.failure.message}`);
  if (j.progress) {
    print('  feedback:');
    for (const l of j.progress.feedback) print(`    ${l}`);
  }
}

export function addJobCommands(program: Command): void {
  const job = program.command('job').description('operations as jobs: list, inspect, watch, abort, force-complete');
  job
    .command('list')
    .description('migrations, failovers, starts, shutdowns and node operations, newest first')
    .option('--running', 'only running ones')
    .option('--json', 'print a JSON array')
    .action(async (o: { running?: boolean; json?: boolean }) => {
      const jobs = await listJobs(await client(), { running: !!o.running });
      if (o.json) {
        printJson(jobs);
        return;
      }
      print(
        table(
          ['Workflow', 'Status', 'Operation', 'Nodes', 'Phase', 'Started'],
          jobs.map((j) => [
            j.workflowId,
            `${j.status}${j.needsOperator ? ' (needs operator)' : ''}`,
            j.operation ?? '-',
            // Start and shutdown name one node (the primary) as both; node operations their node.
            !j.sourceNode
              ? '-'
              : NODE_WORKFLOW_TYPES.includes(j.type)
                ? `${j.sourceNode} → *`
                : j.sourceNode === j.targetNode
                  ? j.sourceNode
                  : `${j.sourceNode} → ${j.targetNode ?? '?'}`,
            j.phase ?? '-',
            j.startTime,
          ]),
        ),
      );
    });
  job
    .command('info <workflow-id>')
    .description('an operation: status, steps, feedback, live progress, result (an instance name works too)')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const c = await client();
      const j = await orNoSuchOperation(id, () => jobInfo(c, id));
      if (o.json) printJson(j);
      else printJobInfo(j);
    });
  job
    .command('watch <workflow-id>')
    .description('follow a running operation to its end (an instance name works too)')
    .option('--json', 'print the result (or error) as JSON at the end')
    .action(async (id: string, o: { json?: boolean }) => {
      const c = await client();
      const handle = c.workflow.getHandle(toWorkflowId(id));
      const d = await orNoSuchOperation(id, () => handle.describe());
      const follow = NODE_WORKFLOW_TYPES.includes(d.type) ? followNodeToEnd : followToEnd;
      await follow(handle, o, webUiUrl(temporalSettings(), handle.workflowId));
    });
  job
    .command('abort <workflow-id>')
    .description('abort an operation before its point of no return (abort + revert then run); says why if refused')
    .option('--reason <text>', 'why')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { reason?: string; json?: boolean }) => {
      const r = await abortOperation(await client(), toWorkflowId(id), o.reason);
      if (o.json) printJson(r);
      else print(`Abort accepted during ${r.phase}: ${r.message} (follow it with: ganeti-temporal job watch ${toWorkflowId(id)})`);
    });
  job
    .command('force-complete <workflow-id>')
    .description(
      'force a running memory transfer to complete: post-copy if its policy allows it, else pause the instance (non-live finish)',
    )
    .option('--reason <text>', 'why')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { reason?: string; json?: boolean }) => {
      const c = await client();
      const r = await orNoSuchOperation(id, () => forceCompleteOperation(c, toWorkflowId(id), o.reason));
      if (o.json) printJson(r);
      else print(`Force-complete accepted (${r.action}): ${r.message} (follow it with: ganeti-temporal job watch ${toWorkflowId(id)})`);
    });
}
