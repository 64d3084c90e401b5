import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listeningPort, spawnUntilListening, type CapturedProcess } from '../../platform/process.js';
import { REGISTRY_NODE_FLAGS } from '../../server/node-flags.js';

const CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));
// The suite runs two files at once on two cores beside dockerd and builds: a start takes 1 s idle, 10+ s loaded.
const START_TIMEOUT_MS = 60_000;

export interface RegistryOptions {
  /** Reuse a data directory (to restart a registry over the same state). */
  dataDir?: string;
  port?: number;
  /** The address to listen on (default 127.0.0.1), e.g. a test bridge's address that network namespaces reach. */
  host?: string;
  env?: Record<string, string>;
  args?: string[];
  /** How long the start may take (default 20 s). */
  startTimeoutMs?: number;
}

/** A real `berth serve` process on a free port, with its own data directory and embedded Redis. */
export class RegistryProcess {
  private constructor(
    private readonly process: CapturedProcess,
    readonly dataDir: string,
    private readonly ownsDataDir: boolean,
    readonly port: number,
    private readonly address: string,
  ) {}

  get child(): ChildProcess {
    return this.process.child;
  }

  static async start(options: RegistryOptions = {}): Promise<RegistryProcess> {
    const ownsDataDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'berth-test-')));
    const started = await spawnUntilListening(
      process.execPath,
      [
        ...REGISTRY_NODE_FLAGS,
        CLI,
        'serve',
        '--host',
        options.host ?? '127.0.0.1',
        '--port',
        String(options.port ?? 0),
        '--data-dir',
        dataDir,
        ...(options.args ?? []),
      ],
      {
        name: 'berth registry',
        env: { ...process.env, BERTH_LOG__LEVEL: 'info', ...options.env },
        timeoutMs: options.startTimeoutMs ?? START_TIMEOUT_MS,
        listening: (output) => listeningPort(output, 'berth registry listening'),
      },
    );
    return new RegistryProcess(started.process, dataDir, ownsDataDir, started.listening, options.host ?? '127.0.0.1');
  }

  /** `127.0.0.1:<port>` (or the address it listens on), as docker, skopeo and podman want it. */
  get host(): string {
    return `${this.address}:${this.port}`;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  get logs(): string {
    return this.process.output;
  }

  /** Stops the registry; SIGKILL simulates a crash (the embedded Redis, given a parent-death signal, goes too). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.process.running) this.child.kill(signal);
    await this.process.exited;
  }

  /** Stops the registry and removes its data directory (and any Redis it left behind). */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.ownsDataDir) await rm(this.dataDir, { recursive: true, force: true });
  }
}
