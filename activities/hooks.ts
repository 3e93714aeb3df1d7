/** Node-agent activity running one phase of hooks on this node (Ganeti's hooks_runner RPC). */
import { Context } from '@temporalio/activity';
import type { HookPath, HookPhase, HookScriptResult } from '../domain/hook-env.js';
import type { HookRunner } from '../domain/ports.js';

export interface HookActivityDeps {
  hooks: HookRunner;
}

export function createHookActivities({ hooks }: HookActivityDeps) {
  return {
    runHooks: (req: { path: HookPath; phase: HookPhase; env: Record<string, string>; timeoutSec: number }): Promise<HookScriptResult[]> =>
      hooks.run(req.path, req.phase, req.env, req.timeoutSec, Context.current().cancellationSignal),
  };
}
