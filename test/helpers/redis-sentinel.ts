import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { CapturedProcess } from '../../platform/process.js';
import { redisAnswers } from '../../server/redis/connect.js';
import { eventually } from './eventually.js';
import { freePort } from './free-port.js';

const MASTER_NAME = 'berth';
const SENTINELS = 3;

/** One redis-server or redis-sentinel child, its output kept for the failure message. */
class RedisChild {
  private constructor(
    private readonly process: CapturedProcess,
    readonly port: number,
  ) {}

  static async start(binary: string, args: string[], port: number): Promise<RedisChild> {
    const started = new RedisChild(new CapturedProcess(spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })), port);
    for (let attempt = 0; attempt < 200; attempt++) {
      if (await redisAnswers({ host: '127.0.0.1', port })) return started;
      if (!started.process.running) break;
      await sleep(25);
    }
    await started.kill();
    throw new Error(`${binary} on port ${port} did not start:\n${started.process.output}`);
  }

  /** SIGTERM, then SIGKILL if it is still there after a grace period. */
  stop(): Promise<void> {
    return this.process.stop();
  }

  /** SIGKILL: the server dies as in a crash, with no chance to tell its replicas or clients. */
  async kill(): Promise<void> {
    if (this.process.running) this.process.child.kill('SIGKILL');
    await this.process.exited;
  }
}

/**
 * A TCP relay in front of the primary, as every client sees it (sentinels, replica, registries). It can
 * stall the replication link alone (a lagging or partitioned replica): what the primary sends its replica
 * is then dropped, so writes the primary acknowledged never reach the replica, as when a network cut comes
 * just before the primary dies. Sentinel monitors the relay's address, so it never "fixes" the replica to
 * bypass it.
 */
class PrimaryRelay {
  private readonly links = new Set<{ client: Socket; upstream: Socket; replication: boolean }>();
  private replicationStalled = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: number, port?: number): Promise<PrimaryRelay> {
    port ??= await freePort();
    let relay: PrimaryRelay | undefined = undefined;
    const server = createServer((client) => relay!.accept(client, target));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    relay = new PrimaryRelay(server, port);
    return relay;
  }

  stallReplication(): void {
    this.replicationStalled = true;
  }

  async stop(): Promise<void> {
    for (const link of this.links) link.client.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, target: number): void {
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    const link = { client, upstream, replication: false };
    this.links.add(link);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.links.delete(link);
    };
    client.on('data', (data: Buffer) => {
      // A replica announces itself with REPLCONF before it asks for the stream with PSYNC.
      if (!link.replication && /REPLCONF|PSYNC/i.test(data.toString('latin1'))) link.replication = true;
      if (!(link.replication && this.replicationStalled)) upstream.write(data);
    });
    upstream.on('data', (data: Buffer) => {
      if (!(link.replication && this.replicationStalled)) client.write(data);
    });
    for (const socket of [client, upstream]) {
      socket.on('error', close);
      socket.on('close', close);
    }
  }
}

export interface SentinelRegistryOptions {
  minReplicasAcked: number;
  ackTimeoutMs?: number;
}

/**
 * A Redis primary and its replicas (plain redis-server, --replicaof) watched by three redis-sentinel
 * processes with short timings (down after 1 s), all on free ports on 127.0.0.1 under one temp directory.
 */
export class SentinelRedis {
  private constructor(
    private readonly directory: string,
    private readonly primary: RedisChild,
    private readonly replicas: RedisChild[],
    private readonly relay: PrimaryRelay,
    private readonly sentinels: RedisChild[],
  ) {}

  /**
   * `replicaCount` 2 keeps writes under minReplicasAcked 1 going right after a failover (the other replica
   * follows the promoted one); with 1 they wait until the dead primary comes back as a replica.
   */
  static async start(replicaCount = 1): Promise<SentinelRedis> {
    const directory = await mkdtemp(path.join(tmpdir(), 'berth-sentinel-'));
    const started: Array<{ stop(): Promise<void> }> = [];
    try {
      const primary = await startServer(directory, 'primary', []);
      started.push(primary);
      const relay = await PrimaryRelay.start(primary.port);
      started.push(relay);
      const replicas: RedisChild[] = [];
      for (let index = 0; index < replicaCount; index++) {
        const replica = await startServer(directory, `replica-${index}`, ['--replicaof', '127.0.0.1', String(relay.port)]);
        started.push(replica);
        replicas.push(replica);
        await eventually(
          () => infoField(replica.port, 'master_link_status'),
          (status) => status === 'up',
          10_000,
        );
      }
      const sentinels: RedisChild[] = [];
      for (let index = 0; index < SENTINELS; index++) {
        const sentinel = await startSentinel(directory, index, relay.port);
        started.push(sentinel);
        sentinels.push(sentinel);
      }
      const cluster = new SentinelRedis(directory, primary, replicas, relay, sentinels);
      // Every sentinel knows the replica and the other sentinels before anything fails.
      await eventually(
        () => Promise.all(sentinels.map((sentinel) => sentinelView(sentinel.port))),
        (views) => views.every((view) => view.replicas === replicaCount && view.otherSentinels === SENTINELS - 1),
        15_000,
      );
      return cluster;
    } catch (error) {
      for (const each of started.reverse()) await each.stop().catch(() => undefined);
      await rm(directory, { recursive: true, force: true });
      throw error;
    }
  }

  /** `127.0.0.1:p1,127.0.0.1:p2,...`, as redis.sentinel.sentinels takes them from the environment. */
  get sentinelAddresses(): string {
    return this.sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`).join(',');
  }

  /** BERTH_* variables that point a registry at these sentinels. */
  registryEnv(options: SentinelRegistryOptions): Record<string, string> {
    return {
      BERTH_REDIS__SENTINEL__SENTINELS: this.sentinelAddresses,
      BERTH_REDIS__SENTINEL__MASTER_NAME: MASTER_NAME,
      BERTH_REDIS__MIN_REPLICAS_ACKED: String(options.minReplicasAcked),
      BERTH_REDIS__ACK_TIMEOUT_MS: String(options.ackTimeoutMs ?? 1_000),
    };
  }

  /** The port the sentinels name as the primary now. */
  async primaryPort(): Promise<number> {
    const client = new Redis({ host: '127.0.0.1', port: this.sentinels[0]!.port, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      const [, port] = (await client.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as [string, string];
      return Number(port);
    } finally {
      client.disconnect();
    }
  }

  /** What the primary sends its replica is dropped from now on: the replica falls behind. */
  stallReplication(): void {
    this.relay.stallReplication();
  }

  /** SIGKILL of the primary; its relay then refuses connections like the dead server. */
  async killPrimary(): Promise<void> {
    await this.primary.kill();
    await this.relay.stop();
  }

  /** Resolves once the sentinels name a replica as the primary. */
  async waitForPromotion(timeoutMs = 30_000): Promise<void> {
    await eventually(
      () => this.primaryPort().catch(() => 0),
      (port) => this.replicas.some((replica) => replica.port === port),
      timeoutMs,
    );
  }

  /** A client of whichever server is primary now, directly. */
  client(port: number): Redis {
    return new Redis({ host: '127.0.0.1', port });
  }

  async stop(): Promise<void> {
    for (const sentinel of this.sentinels) await sentinel.stop();
    for (const replica of this.replicas) await replica.stop();
    await this.primary.stop();
    await this.relay.stop().catch(() => undefined);
    await rm(this.directory, { recursive: true, force: true });
  }
}

async function startServer(directory: string, name: string, extra: string[], port?: number): Promise<RedisChild> {
  port ??= await freePort();
  const dir = await mkdtemp(path.join(directory, `${name}-`));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', ...extra];
  return RedisChild.start('redis-server', args, port);
}

async function startSentinel(directory: string, index: number, primaryPort: number): Promise<RedisChild> {
  const port = await freePort();
  const file = path.join(directory, `sentinel-${index}.conf`);
  // Sentinel rewrites its config file, so each gets its own writable one.
  await writeFile(
    file,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${directory}`,
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primaryPort} 2`,
      `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
      `sentinel failover-timeout ${MASTER_NAME} 4000`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`,
      '',
    ].join('\n'),
  );
  return RedisChild.start('redis-sentinel', [file], port);
}

async function infoField(port: number, field: string): Promise<string | undefined> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    return new RegExp(`^${field}:(.*)\\r?$`, 'm').exec(await client.info())?.[1]?.trim();
  } finally {
    client.disconnect();
  }
}

async function sentinelView(port: number): Promise<{ replicas: number; otherSentinels: number }> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const master = (await client.call('SENTINEL', 'master', MASTER_NAME)) as string[];
    const field = (name: string) => Number(master[master.indexOf(name) + 1]);
    return { replicas: field('num-slaves'), otherSentinels: field('num-other-sentinels') };
  } finally {
    client.disconnect();
  }
}
