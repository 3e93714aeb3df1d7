/**
 * A real systemd for the deploy tests: /lib/systemd/systemd as PID 1 of a private PID and mount
 * namespace (`unshare --pid --fork --mount`), on this machine's own file system and network, that
 * runs the unit files under test with `systemctl` as an operator would.
 *
 * It boots into a target of its own that pulls nothing else, and it must never act on the machine:
 * - /run, /tmp, /var/tmp, /var/lib and /opt are fresh tmpfs in its namespace, and /etc is an
 *   overlay whose changes stay in its namespace (/etc/systemd/system holds only the units given,
 *   /etc/ganeti-temporal the settings given). Directories the tests need from /tmp (a cluster's
 *   home) are bound into its /tmp at the same path.
 * - Everything of sysinit that could touch the machine is masked (tmpfiles' removals at boot above
 *   all, which would empty the real /tmp were it shared), as are the machine's own services.
 * - The project is bound to /opt/ganeti-temporal, where the units expect the installation.
 * Stopping it (SIGKILL of its PID 1) ends every process of the namespace, guests included.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const SYSTEMD = '/lib/systemd/systemd';

/** Units that must not run in the test boot: they would act on the machine, or are its own services. */
const MASKED = [
  'systemd-tmpfiles-setup.service',
  'systemd-tmpfiles-setup-dev.service',
  'systemd-tmpfiles-clean.service',
  'systemd-tmpfiles-clean.timer',
  'systemd-remount-fs.service',
  'systemd-sysctl.service',
  'systemd-binfmt.service',
  'systemd-modules-load.service',
  'systemd-sysusers.service',
  'systemd-random-seed.service',
  'systemd-machine-id-commit.service',
  'systemd-firstboot.service',
  'systemd-udevd.service',
  'systemd-udev-trigger.service',
  'nginx.service',
  'postgresql.service',
];

const TARGET = 'ganeti-temporal-test.target';

const BOOT = `set -euo pipefail
stage=$1 root=$2; shift 2
mount --make-rprivate /
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/gt/etc-upper /run/gt/etc-work /run/gt/keep
cp -r "$stage" /run/gt/stage
i=0
for d in "$@"; do mkdir -p /run/gt/keep/$i; mount --bind "$d" /run/gt/keep/$i; i=$((i+1)); done
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
mount -t tmpfs -o mode=755 tmpfs /var/lib
i=0
for d in "$@"; do mkdir -p "$d"; mount --bind /run/gt/keep/$i "$d"; i=$((i+1)); done
mount -t overlay overlay -o lowerdir=/etc,upperdir=/run/gt/etc-upper,workdir=/run/gt/etc-work /etc
rm -rf /etc/systemd/system /etc/ganeti-temporal
mkdir -p /etc/systemd/system /etc/ganeti-temporal
cp -r /run/gt/stage/units/. /etc/systemd/system/
cp -r /run/gt/stage/etc/. /etc/ganeti-temporal/
mount -t tmpfs -o mode=755 tmpfs /opt
mkdir /opt/ganeti-temporal
mount --bind "$root" /opt/ganeti-temporal
export container=ganeti-temporal-test
exec ${SYSTEMD} --system --unit=${TARGET} --log-target=console --log-level=notice
`;

export interface BootOptions {
  /** Bound to /opt/ganeti-temporal. */
  root: string;
  /** Unit files by name (drop-ins as `<unit>.d/<file>.conf`), into /etc/systemd/system. */
  units: Record<string, string>;
  /** Files of /etc/ganeti-temporal. */
  etc: Record<string, string>;
  /** Directories under /tmp that its processes must see (bound at the same path). */
  keep?: string[];
}

export class Systemd {
  private constructor(
    private readonly child: ChildProcess,
    private readonly stage: string,
    private readonly log: () => string,
  ) {}

  static async boot(o: BootOptions): Promise<Systemd> {
    const stage = mkdtempSync(join(tmpdir(), 'ganeti-temporal-systemd-'));
    const files: Record<string, string> = {
      [`units/${TARGET}`]: '[Unit]\nDescription=ganeti-temporal test boot\nDefaultDependencies=no\n',
    };
    for (const [name, text] of Object.entries(o.units)) files[`units/${name}`] = text;
    for (const [name, text] of Object.entries(o.etc)) files[`etc/${name}`] = text;
    for (const [rel, text] of Object.entries(files)) {
      mkdirSync(dirname(join(stage, rel)), { recursive: true });
      writeFileSync(join(stage, rel), text);
    }
    mkdirSync(join(stage, 'units'), { recursive: true });
    mkdirSync(join(stage, 'etc'), { recursive: true });
    const masks = MASKED.map((m) => `ln -sf /dev/null /run/gt/stage/units/${m}`).join('\n');
    const script = BOOT.replace('mount -t tmpfs -o mode=1777 tmpfs /tmp', `${masks}\nmount -t tmpfs -o mode=1777 tmpfs /tmp`);
    const child = spawn(
      'unshare',
      ['--pid', '--fork', '--mount', '--mount-proc', 'bash', '-c', script, 'boot', stage, o.root, ...(o.keep ?? [])],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const sd = new Systemd(child, stage, () => out);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`systemd did not boot (${child.exitCode}):\n${out}`);
      const pid = sd.pid();
      if (
        pid !== null &&
        sd
          .systemctl(['is-system-running'])
          .out.trim()
          .match(/^(running|degraded)$/)
      )
        return sd;
      if (Date.now() > deadline) {
        await sd.stop();
        throw new Error(`systemd not running after 30 s:\n${out}`);
      }
      await sleep(200);
    }
  }

  /** systemd's pid (in this process's PID namespace), once it runs. */
  pid(): number | null {
    try {
      const pid = Number(readFileSync(`/proc/${this.child.pid}/task/${this.child.pid}/children`, 'utf8').trim().split(' ')[0]);
      return pid > 0 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd' ? pid : null;
    } catch {
      return null;
    }
  }

  /** `systemctl …` inside its namespaces. */
  systemctl(args: string[]): { code: number; out: string } {
    const pid = this.pid();
    if (pid === null) return { code: -1, out: `systemd is not running:\n${this.log()}` };
    const r = spawnSync('nsenter', ['-t', String(pid), '-m', '-p', 'systemctl', '--no-pager', ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
  }

  /** Writes a file in its /etc (the overlay). */
  writeEtc(path: string, text: string): void {
    const pid = this.pid();
    if (pid === null) throw new Error('systemd is not running');
    const r = spawnSync('nsenter', ['-t', String(pid), '-m', 'sh', '-c', 'mkdir -p "$(dirname "$1")" && cat > "$1"', 'write', path], {
      input: text,
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`cannot write ${path}: ${r.stderr}`);
  }

  /** Kills its PID 1, and with it every process of its namespace; `unshare` reaps it and exits. */
  async stop(): Promise<void> {
    const pid = this.pid();
    if (pid !== null) spawnSync('kill', ['-9', String(pid)]);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = once(this.child, 'exit');
      if (pid === null) this.child.kill('SIGKILL');
      await Promise.race([exited, sleep(10_000)]);
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    }
    rmSync(this.stage, { recursive: true, force: true });
  }
}
