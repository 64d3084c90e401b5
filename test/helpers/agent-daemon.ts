import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeDirWithMounts, run, type RunResult } from './exec.js';

const CLI = fileURLToPath(new URL('../../runtime-agent/cli.js', import.meta.url));
const START_TIMEOUT_MS = 15_000;

/** A real `berth-agent daemon` with its own data directory (short, under /tmp: unix socket paths are limited). */
export class AgentDaemon {
  private output = '';
  private readonly exited: Promise<void>;

  private constructor(
    readonly child: ChildProcess,
    readonly dataDir: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(args: string[] = []): Promise<AgentDaemon> {
    const dataDir = await mkdtemp('/tmp/berth-agent-');
    const child = spawn(process.execPath, [CLI, '--data-dir', dataDir, 'daemon', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const daemon = new AgentDaemon(child, dataDir);
    try {
      await daemon.waitForListening();
    } catch (error) {
      await daemon.destroy();
      throw error;
    }
    return daemon;
  }

  get logs(): string {
    return this.output;
  }

  /** Runs `berth-agent --data-dir <dir> <args>` (the CLI finds the daemon's socket in the data dir). */
  cli(args: string[], options: { allowFailure?: boolean } = {}): Promise<RunResult> {
    return run(process.execPath, [CLI, '--data-dir', this.dataDir, ...args], { ...options, timeoutMs: 60_000 });
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

  async destroy(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
    await removeDirWithMounts(this.dataDir);
  }

  private waitForListening(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`agent did not start within ${START_TIMEOUT_MS} ms:\n${this.output}`)), START_TIMEOUT_MS);
      const onData = (text: string) => {
        this.output += text;
        if (this.output.includes('berth-agent listening')) {
          clearTimeout(timer);
          resolve();
        }
      };
      for (const stream of [this.child.stdout, this.child.stderr]) {
        stream?.setEncoding('utf8');
        stream?.on('data', onData);
      }
      this.child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`agent exited (code ${code}, signal ${signal}) before listening:\n${this.output}`));
      });
    });
  }
}
