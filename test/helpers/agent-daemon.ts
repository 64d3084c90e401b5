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
  ) {}

  static async start(args: string[] = [], env: Record<string, string> = {}): Promise<AgentDaemon> {
    const daemon = new AgentDaemon(await mkdtemp('/tmp/berth-agent-'), args, env);
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
    this.process.child.kill('SIGKILL');
    await this.process.exited;
    await this.launch();
  }

  private async launch(): Promise<void> {
    const daemonArgs = ['--bridge-name', this.bridgeName, '--bridge-subnet', this.bridgeSubnet, ...this.args];
    const started = await spawnUntilListening(process.execPath, [CLI, '--data-dir', this.dataDir, 'daemon', ...daemonArgs], {
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

  /** Removes every container (they outlive the daemon by design), stops the daemon, deletes its state and bridge. */
  async destroy(): Promise<void> {
    const running = this.process?.running ?? false;
    if (running) {
      const ids = (await this.cli(['ps', '-a', '-q', '--no-trunc'], { allowFailure: true })).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await this.cli(['rm', '-f', ...ids], { allowFailure: true });
      this.process.child.kill('SIGTERM');
    }
    await this.process?.exited;
    await new ContainerNetwork(
      { bridgeName: this.bridgeName, subnet: this.bridgeSubnet, stateDir: path.join(this.dataDir, 'network') },
      silentLogger(),
    ).destroy();
    await removeDirWithMounts(this.dataDir);
  }
}
