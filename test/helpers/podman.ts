import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { removeDirWithMounts, run, type RunOptions, type RunResult } from './exec.js';

// podman 4.3 sets its own RLIMIT_NPROC to 32768 at startup (strace shows it), so conmon and runc inherit that
// ceiling and a container asking for more nproc fails with EPERM just like one asking above the hard limit.
const PODMAN_OWN_NPROC = 32_768;

/**
 * podman with its storage, runtime state and temp files in one temp directory, configured for these
 * machines: runc (crun fails on this cgroup v1 host), cgroupfs (no systemd) and ulimits at the hard limit,
 * since without CAP_SYS_RESOURCE podman's defaults (above it) make every container fail with EPERM.
 */
export class PodmanEnvironment {
  private constructor(readonly dir: string) {}

  static async create(): Promise<PodmanEnvironment> {
    const nofile = await hardLimit('-n');
    const nproc = Math.min(await hardLimit('-u'), PODMAN_OWN_NPROC);
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-podman-'));
    await writeFile(
      path.join(dir, 'storage.conf'),
      ['[storage]', 'driver = "overlay"', `runroot = "${dir}/run"`, `graphroot = "${dir}/root"`, ''].join('\n'),
    );
    await writeFile(
      path.join(dir, 'containers.conf'),
      [
        '[containers]',
        `default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]`,
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `events_logfile_path = "${dir}/events.log"`,
        'runtime = "runc"',
        // Keeps podman's state out of /run/libpod and /var/lib/containers.
        `tmp_dir = "${dir}/tmp"`,
        `static_dir = "${dir}/root/libpod"`,
        `volume_path = "${dir}/root/volumes"`,
        '[network]',
        `network_config_dir = "${dir}/networks"`,
        '',
      ].join('\n'),
    );
    return new PodmanEnvironment(dir);
  }

  podman(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return run('podman', args, { ...options, env: { ...this.env, ...options.env } });
  }

  /** The environment that points podman (and skopeo's containers-storage: transport) at this configuration. */
  get env(): Record<string, string> {
    return {
      CONTAINERS_STORAGE_CONF: path.join(this.dir, 'storage.conf'),
      CONTAINERS_CONF: path.join(this.dir, 'containers.conf'),
    };
  }

  /** Removes containers (and their mounts), then the whole state directory. */
  async destroy(): Promise<void> {
    await this.podman(['rm', '--all', '--force'], { allowFailure: true });
    await removeDirWithMounts(this.dir);
  }
}

/** The hard rlimit, the highest value a process without CAP_SYS_RESOURCE may ask for. */
async function hardLimit(flag: '-n' | '-u'): Promise<number> {
  // bash, not sh: dash's ulimit has no -u.
  const value = (await run('bash', ['-c', `ulimit -H ${flag}`])).stdout.trim();
  // No ceiling: podman's own default (1048576) is then allowed.
  return value === 'unlimited' ? 1_048_576 : Number(value);
}
