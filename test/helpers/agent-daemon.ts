import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../platform/logger.js';
import { spawnUntilListening, type CapturedProcess } from '../../platform/process.js';
import { ContainerNetwork } from '../../runtime-agent/network/container-network.js';
import { removeDirWithMounts, run, type RunResult } from './exec.js';

const CLI = fileURLToPath(new URL('../../runtime-agent/cli.js', import.meta.url));
// As for the registry: about 1 s idle, far more when the suite's own builds load both cores.
const START_TIMEOUT_MS = 60_000;

/** A real `berth-agent daemon` with its own data directory (short, under /tmp: unix socket paths are limited). */
export class AgentDaemon {
  private process!: CapturedProcess;
  /** Its own bridge and subnet: test files running at once each have an agent. */
  readonly bridgeName = `bt${randomBytes(3).toString('hex')}`;
  readonly bridgeSubnet = `10.${randomInt(100, 250)}.${randomInt(0, 255)}.0/24`;

  private constructor(
    readonly dataDir: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    private readonly netns: string | undefined,
  ) {}

  /** `netns`: the name of a network namespace (`ip netns`) the daemon runs in, as a host of its own. */
  static async start(args: string[] = [], env: Record<string, string> = {}, netns?: string): Promise<AgentDaemon> {
    const daemon = new AgentDaemon(await mkdtemp('/tmp/berth-agent-'), args, env, netns);
    try {
      await daemon.launch();
    } catch (error) {
      await daemon.destroy();
      throw error;
    }
    return daemon;
  }

  get pid(): number | undefined {
    return this.process.child.pid;
  }

  /** SIGKILLs the daemon (no chance to clean up) and starts it again on the same data directory. */
  async killAndRestart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** SIGKILLs the daemon; its containers keep running (their shims own them). */
  async kill(): Promise<void> {
    this.process.child.kill('SIGKILL');
    await this.process.exited;
  }

  /** Starts the daemon again on the same data directory, after kill(). */
  async restart(): Promise<void> {
    await this.launch();
  }

  get running(): boolean {
    return this.process.running;
  }

  private async launch(args = this.args): Promise<void> {
    const daemonArgs = ['--bridge-name', this.bridgeName, '--bridge-subnet', this.bridgeSubnet, ...args];
    const command = [CLI, '--data-dir', this.dataDir, 'daemon', ...daemonArgs];
    // nsenter --net (not `ip netns exec`, which makes a mount namespace of its own) execs node: the pid is the daemon's.
    const [file, argv] = this.netns
      ? ['nsenter', [`--net=/run/netns/${this.netns}`, process.execPath, ...command]]
      : [process.execPath, command];
    const started = await spawnUntilListening(file, argv, {
      name: 'berth-agent',
      env: { ...process.env, ...this.env },
      timeoutMs: START_TIMEOUT_MS,
      listening: (output) => (output.includes('berth-agent listening') ? true : undefined),
    });
    this.process = started.process;
  }

  get logs(): string {
    return this.process.output;
  }

  /** Runs `berth-agent --data-dir <dir> <args>` (the CLI finds the daemon's socket in the data dir). */
  cli(args: string[], options: { allowFailure?: boolean; input?: string } = {}): Promise<RunResult> {
    const command = this.cliCommand(args);
    return run(command.file, command.args, { ...options, timeoutMs: 60_000 });
  }

  /** The command line of `berth-agent --data-dir <dir> <args>`, for callers that spawn it themselves. */
  cliCommand(args: string[]): { file: string; args: string[] } {
    return { file: process.execPath, args: [CLI, '--data-dir', this.dataDir, ...args] };
  }

  /** Names of the snapshot directories (`sha256-<hex>`), without work directories. */
  async snapshots(): Promise<string[]> {
    return (await readdir(path.join(this.dataDir, 'snapshots'))).filter((name) => !name.startsWith('.')).sort();
  }

  /** Digests of the blobs in the content store. */
  async blobs(): Promise<string[]> {
    const names = await readdir(path.join(this.dataDir, 'content', 'blobs', 'sha256')).catch(() => []);
    return names.map((hex) => `sha256:${hex}`).sort();
  }

  snapshotFiles(chainId: string): string {
    return path.join(this.dataDir, 'snapshots', chainId.replace(':', '-'), 'fs');
  }

  /**
   * Removes every container (they outlive the daemon by design), stops the daemon, deletes its state and
   * bridge. A daemon that was killed is started again first, to remove its containers the way it made them.
   */
  async destroy(): Promise<void> {
    if (this.process && (!this.process.running || this.args.includes('--join'))) {
      // A node would make its assigned containers again as they are removed: it is restarted as a plain agent.
      this.process.child.kill('SIGTERM');
      await this.process.exited;
      await this.launch(withoutNodeFlags(this.args)).catch(() => undefined);
    }
    const running = this.process?.running ?? false;
    if (running) {
      const ids = (await this.cli(['ps', '-a', '-q', '--no-trunc'], { allowFailure: true })).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await this.cli(['rm', '-f', ...ids], { allowFailure: true });
      this.process.child.kill('SIGTERM');
    }
    await this.process?.exited;
    // Inside a namespace of its own, the bridge and rules go with the namespace (its owner deletes it).
    if (!this.netns)
      await new ContainerNetwork(
        { bridgeName: this.bridgeName, subnet: this.bridgeSubnet, stateDir: path.join(this.dataDir, 'network') },
        silentLogger(),
      ).destroy();
    await removeDirWithMounts(this.dataDir);
  }
}

const NODE_FLAGS = new Set(['--join', '--token', '--label', '--node-name', '--advertise-address']);

function withoutNodeFlags(args: readonly string[]): string[] {
  return args.filter((arg, index) => !NODE_FLAGS.has(arg) && !NODE_FLAGS.has(args[index - 1] ?? ''));
}
