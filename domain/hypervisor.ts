/** Hypervisor-class knowledge the master needs (Ganeti's hv_base / hv_kvm class methods). */

/**
 * Whether migrating between two hypervisor versions is expected to work. KVM always answers yes
 * (a mismatch is only a warning); the base class accepts equal versions only.
 */
export function hvVersionPairSafe(hypervisor: string, source: string, target: string): boolean {
  if (hypervisor === 'kvm') return true;
  return source === target;
}
