import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { redisAnswers } from '../../server/redis/connect.js';
import { freePort } from './free-port.js';

/** A standalone redis-server on a free TCP port, for tests that use an external Redis. */
export class RedisServer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly directory: string,
    readonly port: number,
  ) {}

  /** `args` are added to the command line (e.g. `--replicaof 127.0.0.1 <port>`). */
  static async start(args: string[] = []): Promise<RedisServer> {
    const directory = await mkdtemp(path.join(tmpdir(), 'berth-redis-'));
    const port = await freePort();
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', directory, '--save', '', '--appendonly', 'no', ...args],
      {
        stdio: 'ignore',
      },
    );
    const server = new RedisServer(child, directory, port);
    await server.waitUntilReady();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  client(): Redis {
    return new Redis(this.url);
  }

  /** SIGSTOP / SIGCONT: a server that hangs (a stalled replica) and comes back. */
  pause(paused: boolean): void {
    this.child.kill(paused ? 'SIGSTOP' : 'SIGCONT');
  }

  async stop(): Promise<void> {
    this.pause(false);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    await rm(this.directory, { recursive: true, force: true });
  }

  private async waitUntilReady(): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      if (await redisAnswers({ host: '127.0.0.1', port: this.port })) return;
      await sleep(50);
    }
    throw new Error('redis-server did not start');
  }
}
