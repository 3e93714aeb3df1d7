/**
 * `tsx bench/heap-summary.ts <file.heapsnapshot> [top]`: what a V8 heap snapshot holds, by kind and
 * constructor — count and shallow size, the largest first (what DevTools' Summary view shows, without
 * retained sizes). For the snapshots bench:scale takes with BENCH_HEAPSNAPSHOT.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

function main(): void {
  const file = process.argv[2];
  const top = Number(process.argv[3] || 40);
  if (!file) throw new Error('usage: heap-summary.ts <file.heapsnapshot> [top]');
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const groups = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!] ?? '?';
    const size = snap.nodes[i + iSize]!;
    total += size;
    // Objects and closures by constructor; strings, code, arrays and the rest by kind.
    const name =
      type === 'object' || type === 'closure' || type === 'native' ? `${type} ${snap.strings[snap.nodes[i + iName]!]}` : `(${type})`;
    const g = groups.get(name) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    groups.set(name, g);
  }
  const mib = (b: number) => (b / 1048576).toFixed(1).padStart(8);
  console.log(`${file}: ${snap.nodes.length / width} nodes, ${mib(total).trim()} MiB shallow`);
  console.log(`${'MiB'.padStart(8)} ${'count'.padStart(9)}  kind / constructor`);
  for (const [name, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top))
    console.log(`${mib(g.bytes)} ${String(g.count).padStart(9)}  ${name.slice(0, 100)}`);
}

main();
