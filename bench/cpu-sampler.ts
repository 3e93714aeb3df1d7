/**
 * `BENCH_CPU=1` of bench:qmp: who used the CPU while QEMU migrated. Samples, every few ms, the CPU
 * time (utime + stime from /proc) of this process, its child processes (the Temporal dev server) and
 * every thread of the QEMU processes under the bench's home, so that a window (the transfer: from
 * `migrate` to the completion seen) can be split into what the migration thread, the guest's vCPU, the
 * rest of QEMU, this process and the dev server got of the machine's cores. Linux only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { qemuProcessesMentioning } from '../adapters/qemu/process.js';

const TICK_MS = 10; // 1000 / CLK_TCK (100 on Linux)

interface Sample {
  at: number;
  /** CPU ms per key. */
  cpu: Map<string, number>;
}

function statOf(path: string): { comm: string; ppid: number; ms: number } | null {
  try {
    const s = readFileSync(path, 'utf8');
    const close = s.lastIndexOf(')');
    const comm = s.slice(s.indexOf('(') + 1, close);
    const f = s.slice(close + 2).split(' ');
    // fields after comm: state(0) ppid(1) … utime(11) stime(12)
    return { comm, ppid: Number(f[1]), ms: (Number(f[11]) + Number(f[12])) * TICK_MS };
  } catch {
    return null;
  }
}

/** The key a QEMU thread is counted under. */
function threadKey(comm: string): string {
  if (comm === 'live_migration' || comm.startsWith('mig/')) return 'qemu migration thread';
  if (/CPU \d+\/TCG|CPU \d+\/KVM/.test(comm)) return 'qemu vCPU';
  return 'qemu other';
}

export class CpuSampler {
  private readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly home: string,
    private readonly everyMs = 20,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.sample(), this.everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private pids: { at: number; children: number[]; qemu: number[] } = { at: 0, children: [], qemu: [] };

  /** The processes to read (scanning /proc for them is what costs: at most every 200 ms). */
  private processes(): { children: number[]; qemu: number[] } {
    if (Date.now() - this.pids.at < 200) return this.pids;
    const children: number[] = [];
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
      const st = statOf(`/proc/${e}/stat`);
      if (st && st.ppid === process.pid && !st.comm.startsWith('qemu')) children.push(Number(e));
    }
    this.pids = { at: Date.now(), children, qemu: qemuProcessesMentioning(this.home) };
    return this.pids;
  }

  private sample(): void {
    const cpu = new Map<string, number>();
    const add = (k: string, ms: number) => cpu.set(k, (cpu.get(k) ?? 0) + ms);
    const self = statOf('/proc/self/stat');
    if (self) add('bench process (workers)', self.ms);
    const { children, qemu } = this.processes();
    for (const pid of children) {
      const st = statOf(`/proc/${pid}/stat`);
      if (st) add('dev server', st.ms);
    }
    for (const pid of qemu) {
      let tids: string[];
      try {
        tids = readdirSync(`/proc/${pid}/task`);
      } catch {
        continue;
      }
      for (const tid of tids) {
        const st = statOf(`/proc/${pid}/task/${tid}/stat`);
        // Per thread id: summed by kind only over a window (threads come and go).
        if (st) add(`${threadKey(st.comm)}\t${pid}/${tid}`, st.ms);
      }
    }
    this.samples.push({ at: Date.now(), cpu });
    if (this.samples.length > 20_000) this.samples.splice(0, 10_000);
  }

  /** CPU ms per key (threads summed by kind) over [from, to] (epoch ms), and the window's length. */
  window(from: number, to: number): { ms: number; cpu: Record<string, number> } {
    const a = [...this.samples].reverse().find((x) => x.at <= from) ?? this.samples[0];
    const b = this.samples.find((x) => x.at >= to) ?? this.samples.at(-1);
    if (!a || !b) return { ms: 0, cpu: {} };
    // A thread's last value inside the window (the migration thread exits when the transfer ends);
    // one that did not exist at its start counts from 0.
    const last = new Map<string, number>();
    for (const x of this.samples) if (x.at >= a.at && x.at <= b.at) for (const [k, v] of x.cpu) last.set(k, v);
    const out: Record<string, number> = {};
    for (const [k, v] of last) {
      const kind = k.split('\t')[0]!;
      out[kind] = (out[kind] ?? 0) + Math.max(0, v - (a.cpu.get(k) ?? 0));
    }
    return { ms: b.at - a.at, cpu: out };
  }
}

/** "migration thread 180 ms (90 %), vCPU …" for one window. */
export function describeWindow(w: { ms: number; cpu: Record<string, number> }): string {
  const order = ['qemu migration thread', 'qemu vCPU', 'qemu other', 'bench process (workers)', 'dev server'];
  return (
    `window ${w.ms} ms: ` +
    order
      .map(
        (k) => `${k.replace('qemu ', '')} ${(w.cpu[k] ?? 0).toFixed(0)} ms (${(((w.cpu[k] ?? 0) * 100) / Math.max(1, w.ms)).toFixed(0)} %)`,
      )
      .join(', ')
  );
}
