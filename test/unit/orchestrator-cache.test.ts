/** GANETI_TEMPORAL_MAX_CACHED_WORKFLOWS: the orchestrator's sticky cache size, or the SDK's default. */
import { expect, test } from 'vitest';
import { maxCachedWorkflows } from '../../worker/orchestrator.js';

test('a whole number sets the cache size; unset or empty leaves the SDK default; anything else is refused', () => {
  expect(maxCachedWorkflows({})).toBeUndefined();
  expect(maxCachedWorkflows({ GANETI_TEMPORAL_MAX_CACHED_WORKFLOWS: '' })).toBeUndefined();
  expect(maxCachedWorkflows({ GANETI_TEMPORAL_MAX_CACHED_WORKFLOWS: '0' })).toBe(0);
  expect(maxCachedWorkflows({ GANETI_TEMPORAL_MAX_CACHED_WORKFLOWS: '150' })).toBe(150);
  for (const bad of ['-1', '1.5', 'ten', '10 ', '1e3']) {
    expect(() => maxCachedWorkflows({ GANETI_TEMPORAL_MAX_CACHED_WORKFLOWS: bad })).toThrow(
      /GANETI_TEMPORAL_MAX_CACHED_WORKFLOWS must be a whole number/,
    );
  }
});
