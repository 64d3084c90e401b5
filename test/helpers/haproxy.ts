import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CapturedProcess } from '../../platform/process.js';
import { freePort } from './free-port.js';

/**
 * haproxy (Debian's) in HTTP mode on a free port of 127.0.0.1, balancing every request round robin over
 * `backends` (also the requests of one keep-alive connection), with /readyz as the health check.
 */
export class Haproxy {
  private constructor(
    private readonly process: CapturedProcess,
    private readonly directory: string,
    readonly port: number,
  ) {}

  static async start(backends: number[]): Promise<Haproxy> {
    const directory = await mkdtemp(path.join(tmpdir(), 'berth-haproxy-'));
    const port = await freePort();
    const config = path.join(directory, 'haproxy.cfg');
    await writeFile(
      config,
      [
        'global',
        '  maxconn 512',
        'defaults',
        '  mode http',
        '  timeout connect 2s',
        '  timeout client 120s',
        '  timeout server 120s',
        // A request that found no server up (all replicas unready during a failover) waits for one.
        '  timeout queue 10s',
        '  retries 2',
        'frontend registry',
        `  bind 127.0.0.1:${port}`,
        '  default_backend replicas',
        'backend replicas',
        '  balance roundrobin',
        '  option httpchk GET /readyz',
        ...backends.map((backend, index) => `  server replica${index} 127.0.0.1:${backend} check inter 500 fall 3 rise 1`),
        '',
      ].join('\n'),
    );
    const proxy = new Haproxy(
      new CapturedProcess(spawn('haproxy', ['-f', config, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] })),
      directory,
      port,
    );
    await proxy.waitUntilReady();
    return proxy;
  }

  /** `127.0.0.1:<port>`, as docker and skopeo want it. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  async stop(): Promise<void> {
    await this.process.stop();
    await rm(this.directory, { recursive: true, force: true });
  }

  /** Until haproxy answers and its health checks found a replica ready (before that it answers 503 itself). */
  private async waitUntilReady(): Promise<void> {
    for (let attempt = 0; attempt < 200; attempt++) {
      if (!this.process.running) break;
      const response = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
      if (response?.ok) return;
      await sleep(50);
    }
    await this.stop();
    throw new Error(`haproxy did not start:\n${this.process.output}`);
  }
}
