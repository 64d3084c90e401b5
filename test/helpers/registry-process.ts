import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));
const START_TIMEOUT_MS = 20_000;
// The startup line in either log format: JSON (fields first) or pretty (message first, then the fields).
const LISTENING = /"port":(\d+)[^\n]*berth registry listening|berth registry listening[^\n]*"port":(\d+)/;

export interface RegistryOptions {
  /** Reuse a data directory (to restart a registry over the same state). */
  dataDir?: string;
  port?: number;
  env?: Record<string, string>;
  args?: string[];
}

/** A real `berth serve` process on a free port, with its own data directory and embedded Redis. */
export class RegistryProcess {
  private output = '';
  private exited: Promise<void>;

  private constructor(
    readonly child: ChildProcess,
    readonly dataDir: string,
    private readonly ownsDataDir: boolean,
    public port = 0,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(options: RegistryOptions = {}): Promise<RegistryProcess> {
    const ownsDataDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'berth-test-')));
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--host', '127.0.0.1', '--port', String(options.port ?? 0), '--data-dir', dataDir, ...(options.args ?? [])],
      { env: { ...process.env, BERTH_LOG__LEVEL: 'info', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const registry = new RegistryProcess(child, dataDir, ownsDataDir);
    registry.port = await registry.waitForListening();
    return registry;
  }

  /** `127.0.0.1:<port>`, as docker, skopeo and podman want it. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  get logs(): string {
    return this.output;
  }

  /** Stops the registry; SIGKILL simulates a crash (the embedded Redis is then left to the next start). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }

  /** Stops the registry and removes its data directory (and any Redis it left behind). */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.ownsDataDir) await rm(this.dataDir, { recursive: true, force: true });
  }

  private waitForListening(): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // A registry that is slow to start would otherwise outlive the test that gave up on it.
        this.child.kill('SIGTERM');
        reject(new Error(`registry did not start within ${START_TIMEOUT_MS} ms:\n${this.output}`));
      }, START_TIMEOUT_MS);
      const onData = (text: string) => {
        this.output += text;
        const match = LISTENING.exec(this.output);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1] ?? match[2]));
        }
      };
      for (const stream of [this.child.stdout, this.child.stderr]) {
        stream?.setEncoding('utf8');
        stream?.on('data', onData);
      }
      this.child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`registry exited (code ${code}, signal ${signal}) before listening:\n${this.output}`));
      });
    });
  }
}
