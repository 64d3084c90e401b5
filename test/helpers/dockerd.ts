import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { removeDirWithMounts, run, type RunOptions, type RunResult } from './exec.js';

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 20_000;
// overlay2 is fast; vfs (a full copy per layer) works on any filesystem, including an overlayfs root.
const STORAGE_DRIVERS = ['overlay2', 'vfs'] as const;
const DEBIAN_DOCKER_CLI = '/usr/bin/docker';

/**
 * A private dockerd whose state, sockets and config all live in one temp directory. It runs in the light
 * mode that leaves the host alone (no iptables rules, no ip_forward, no docker0): containers only get
 * `lo`, which is all a test that runs with `--network none` needs.
 */
export class DockerDaemon {
  private output = '';
  private readonly exited: Promise<void>;

  private constructor(
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('error', (error) => (this.output += `dockerd could not start: ${error.message}\n`));
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (text: string) => (this.output += text));
    }
  }

  /** Starts dockerd with the first storage driver that works here. */
  static async start(): Promise<DockerDaemon> {
    const failures: string[] = [];
    for (const driver of STORAGE_DRIVERS) {
      const dir = await mkdtemp(path.join(tmpdir(), 'berth-dockerd-'));
      const daemon = await DockerDaemon.launch(dir, driver);
      try {
        await daemon.waitUntilReady();
        return daemon;
      } catch (error) {
        failures.push(`${driver}: ${(error as Error).message}`);
        await daemon.stop();
      }
    }
    throw new Error(`dockerd did not start with any storage driver:\n${failures.join('\n\n')}`);
  }

  private static async launch(dir: string, storageDriver: string): Promise<DockerDaemon> {
    // An empty config file: the host's /etc/docker/daemon.json must not change the test daemon.
    const configFile = path.join(dir, 'daemon.json');
    await writeFile(configFile, '{}');
    await mkdir(path.join(dir, 'cli'));
    const child = spawn(
      'dockerd',
      [
        `--config-file=${configFile}`,
        `--data-root=${path.join(dir, 'data')}`,
        `--exec-root=${path.join(dir, 'exec')}`,
        `--pidfile=${path.join(dir, 'dockerd.pid')}`,
        `--host=unix://${path.join(dir, 'docker.sock')}`,
        `--storage-driver=${storageDriver}`,
        '--exec-opt=native.cgroupdriver=cgroupfs',
        '--iptables=false',
        '--ip-forward=false',
        '--ip-masq=false',
        '--bridge=none',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return new DockerDaemon(dir, child);
  }

  /** dockerd's own process (BuildKit runs inside it; containerd is its child), for a benchmark's CPU accounting. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  get host(): string {
    return `unix://${path.join(this.dir, 'docker.sock')}`;
  }

  /**
   * Runs the docker CLI against this daemon. DOCKER_BUILDKIT=0 selects the legacy builder, the one Debian's
   * dockerd 20.10 has without buildx.
   */
  docker(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return this.cli('docker', args, { ...options, env: { DOCKER_BUILDKIT: '0', ...options.env } });
  }

  /**
   * `docker build` with BuildKit, which only builds the stages the target needs (the legacy builder runs them
   * all). Debian's CLI 20.10 has BuildKit built in; the newer CLI first on PATH would need buildx.
   */
  buildKit(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return this.cli(DEBIAN_DOCKER_CLI, ['build', ...args], { ...options, env: { DOCKER_BUILDKIT: '1', ...options.env } });
  }

  private cli(binary: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
    return run(binary, args, { ...options, env: { ...this.cliEnv, ...options.env } });
  }

  /** The environment that points a docker CLI at this daemon, isolated from the host's credentials and contexts. */
  get cliEnv(): Record<string, string> {
    return { DOCKER_HOST: this.host, DOCKER_CONFIG: path.join(this.dir, 'cli') };
  }

  /** Stops dockerd (and the containerd it manages) by PID, then removes every file and mount it left. */
  async stop(): Promise<void> {
    if (this.isRunning()) {
      this.child.kill('SIGTERM');
      // An unref'd timer: a pending one would keep the test worker alive long after dockerd is gone.
      const timeout = sleep(STOP_TIMEOUT_MS, false, { ref: false });
      const stopped = await Promise.race([this.exited.then(() => true), timeout]);
      if (!stopped) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    await removeDirWithMounts(this.dir);
  }

  private isRunning(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (!this.isRunning()) throw new Error(`dockerd exited (code ${this.child.exitCode}):\n${this.output}`);
      const probe = await this.docker(['version', '--format', '{{.Server.Version}}'], { allowFailure: true, timeoutMs: 5_000 });
      if (probe.code === 0) return;
      await sleep(100);
    }
    throw new Error(`dockerd was not ready within ${READY_TIMEOUT_MS} ms:\n${this.output}`);
  }
}
