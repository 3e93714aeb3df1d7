/**
 * Workflow code bundles (no Node or activity imports sneak in), and JSON histories parse: the
 * duplicate-protobufjs bug of SDK 1.24 (fixed by the direct protobufjs dependency) must not return.
 */
import { readFileSync } from 'node:fs';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { expect, test } from 'vitest';
import { inject } from 'vitest';

test('the workflow bundle contains no Node built-ins and no activity implementations', () => {
  const code = readFileSync(inject('workflowBundlePath'), 'utf8');
  expect(code).toContain('migrateInstanceWorkflow');
  expect(code).not.toMatch(/require\(["']node:/);
  expect(code).not.toContain('class SimHypervisor');
  expect(code).not.toContain('class SimStorage');
  expect(code).not.toContain('class FileConfigStore');
});

test('a JSON history parses with the single hoisted protobufjs', () => {
  const h = historyFromJSON({
    events: [
      {
        eventId: '1',
        eventTime: '2026-01-01T00:00:00Z',
        eventType: 'WorkflowExecutionStarted',
        workflowExecutionStartedEventAttributes: { workflowType: { name: 'migrateInstanceWorkflow' }, taskQueue: { name: 'q' } },
      },
    ],
  });
  expect(h.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name).toBe('migrateInstanceWorkflow');
});
