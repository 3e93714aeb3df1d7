/**
 * The behaviour spec's Invariants, as a checker over the configuration and the hardware truth.
 * Pure; returns the list of violations (empty = holds).
 */
import type { InstanceHwDetail } from './cluster.js';
import { secondaryNodes } from '../../domain/instance.js';
import type { Instance } from '../../domain/types.js';

export type InvariantCase =
  /** `_ExecMigration` returned: primary = target. */
  | { kind: 'migrated'; source: string; target: string }
  /** Failure at accept/migrate/status polling and the revert succeeded: primary = source. */
  | { kind: 'reverted'; source: string; target: string }
  /** `_ExecCleanup` returned. */
  | { kind: 'cleaned-up' }
  /** A failover returned (admin state decides whether the instance runs). */
  | { kind: 'failed-over'; source: string; target: string; sourceOnline: boolean }
  /** `instance start` returned: it runs on its primary only, disks active (`remembered`: marked up). */
  | { kind: 'started'; remembered: boolean }
  /** `instance shutdown` returned: it runs nowhere, disks shut down (`remembered`: marked down). */
  | { kind: 'stopped'; remembered: boolean };

export function checkInvariants(c: InvariantCase, inst: Instance, hw: InstanceHwDetail): string[] {
  const v: string[] = [];
  switch (c.kind) {
    case 'migrated':
      expectPrimary(v, inst, c.target);
      if (inst.diskTemplate === 'drbd' && !secondaryNodes(inst).includes(c.source)) v.push(`secondary should be ${c.source}`);
      if (inst.adminState !== 'up') v.push(`admin state changed to ${inst.adminState}`);
      if (!inst.disksActive) v.push('disks_active should be true');
      steady(v, inst, hw);
      break;
    case 'reverted':
      expectPrimary(v, inst, c.source);
      steady(v, inst, hw);
      break;
    case 'cleaned-up':
      steady(v, inst, hw);
      break;
    case 'failed-over':
      expectPrimary(v, inst, c.target);
      if (inst.adminState === 'up') {
        expectRunningOnlyOn(v, inst, hw, c.target);
        if (!inst.disksActive) v.push('disks_active should be true');
        for (const d of hw.disks) {
          const t = d.nodes[c.target];
          if (inst.diskTemplate === 'drbd' && t?.role !== 'Primary')
            v.push(`disk ${d.index}: ${c.target} should be Primary, is ${t?.role}`);
        }
      } else {
        if (hw.runningOn.length) v.push(`nothing should run, runs on ${hw.runningOn.join(', ')}`);
        if (inst.disksActive) v.push('disks_active should be false');
        for (const d of hw.disks) {
          for (const [node, st] of Object.entries(d.nodes)) {
            if (node === c.source && !c.sourceOnline) continue;
            if (st.connection !== 'Unconfigured') v.push(`disk ${d.index} on ${node} should be shut down, is ${st.connection}`);
          }
        }
      }
      if (c.sourceOnline && hw.runningOn.includes(c.source)) v.push(`instance still runs on the source ${c.source}`);
      break;
    case 'started':
      if (c.remembered && inst.adminState !== 'up') v.push(`admin state should be up, is ${inst.adminState}`);
      expectRunningOnlyOn(v, inst, hw, inst.primaryNode);
      if (!inst.disksActive) v.push('disks_active should be true');
      for (const d of hw.disks) {
        if (inst.diskTemplate !== 'drbd') {
          const open = Object.keys(d.nodes);
          if (open.length !== 1 || open[0] !== inst.primaryNode) {
            v.push(`disk ${d.index}: open on [${open.join(', ')}], expected only ${inst.primaryNode}`);
          }
          continue;
        }
        for (const [node, st] of Object.entries(d.nodes)) {
          const role = node === inst.primaryNode ? 'Primary' : 'Secondary';
          if (st.role !== role) v.push(`disk ${d.index}: ${node} is ${st.role}, expected ${role}`);
          if (st.connection === 'Unconfigured') v.push(`disk ${d.index}: ${node} is not assembled`);
        }
      }
      if (hw.links.length !== 1 || hw.links[0] !== inst.primaryNode) {
        v.push(`disk symlinks on [${hw.links.join(', ')}], expected only ${inst.primaryNode}`);
      }
      break;
    case 'stopped':
      if (c.remembered && inst.adminState !== 'down') v.push(`admin state should be down, is ${inst.adminState}`);
      if (hw.runningOn.length) v.push(`nothing should run, runs on ${hw.runningOn.join(', ')}`);
      if (inst.disksActive) v.push('disks_active should be false');
      for (const d of hw.disks) {
        for (const [node, st] of Object.entries(d.nodes)) {
          if (inst.diskTemplate !== 'drbd') v.push(`disk ${d.index} should be closed, is open on ${node}`);
          else if (st.connection !== 'Unconfigured') v.push(`disk ${d.index} on ${node} should be shut down, is ${st.connection}`);
        }
      }
      if (hw.links.length) v.push(`disk symlinks on [${hw.links.join(', ')}], expected none`);
      break;
  }
  return v;
}

function expectPrimary(v: string[], inst: Instance, node: string): void {
  if (inst.primaryNode !== node) v.push(`configured primary is ${inst.primaryNode}, expected ${node}`);
}

function expectRunningOnlyOn(v: string[], inst: Instance, hw: InstanceHwDetail, node: string): void {
  if (hw.runningOn.length !== 1 || hw.runningOn[0] !== node) {
    v.push(`${inst.name} should run exactly on ${node}, runs on [${hw.runningOn.join(', ')}]`);
  } else if (hw.processes[node]?.state !== 'running') {
    v.push(
      `${inst.name} on ${node} is ${hw.processes[node]?.state}${hw.processes[node]?.paused ? ` (${hw.processes[node]?.paused})` : ''}, not running`,
    );
  }
}

/**
 * An instance at rest: it runs exactly on its configured primary (if admin up), DRBD is connected
 * single-primary and in sync with the primary as the only Primary, externally mirrored disks are
 * open exclusively on the primary only, and only the primary holds the disk symlinks.
 */
function steady(v: string[], inst: Instance, hw: InstanceHwDetail): void {
  const pri = inst.primaryNode;
  if (inst.adminState === 'up') expectRunningOnlyOn(v, inst, hw, pri);
  for (const d of hw.disks) {
    const nodes = Object.entries(d.nodes);
    if (inst.diskTemplate === 'drbd') {
      for (const [node, st] of nodes) {
        const role = node === pri ? 'Primary' : 'Secondary';
        if (st.role !== role) v.push(`disk ${d.index}: ${node} is ${st.role}, expected ${role}`);
        if (st.connection !== 'Connected') v.push(`disk ${d.index}: ${node} is ${st.connection}, expected Connected`);
        if (st.disk !== 'UpToDate') v.push(`disk ${d.index}: ${node} disk is ${st.disk}, expected UpToDate`);
        if (st.dualPrimary) v.push(`disk ${d.index}: ${node} still allows two primaries`);
      }
    } else if (inst.diskTemplate === 'sharedfile') {
      const open = nodes.map(([n]) => n);
      if (open.length !== 1 || open[0] !== pri) v.push(`disk ${d.index}: open on [${open.join(', ')}], expected only ${pri}`);
      else if (d.nodes[pri]?.dualPrimary) v.push(`disk ${d.index}: open shared on ${pri}, expected exclusive`);
    }
  }
  if (inst.adminState === 'up' && (hw.links.length !== 1 || hw.links[0] !== pri)) {
    v.push(`disk symlinks on [${hw.links.join(', ')}], expected only ${pri}`);
  }
}
