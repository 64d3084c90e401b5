import { Haproxy } from './haproxy.js';
import { SentinelRedis } from './redis-sentinel.js';
import { RegistryProcess } from './registry-process.js';
import type { S3Server } from './s3-server.js';

// Several Node processes, dockerd and the Redis processes starting on a loaded 2-core machine start slowly.
const START_TIMEOUT_MS = 60_000;

export interface HaDeploymentOptions {
  replicas: number;
  /** Redis replicas under the primary. */
  redisReplicas: number;
  minReplicasAcked: number;
  /** Each deployment's own key prefix in the shared bucket. */
  s3Prefix: string;
  env?: Record<string, string>;
  /** Extra `berth serve` arguments, e.g. `--config <file>`. */
  args?: string[];
}

/**
 * The highly available registry of deploy/: registry replicas on one S3 bucket, a Redis primary and replica
 * under three sentinels, and haproxy round robin in front. Whatever started is stopped by stop().
 */
export class HaDeployment {
  private constructor(
    readonly redis: SentinelRedis,
    readonly registries: RegistryProcess[],
    readonly balancer: Haproxy,
  ) {}

  static async start(s3: S3Server, options: HaDeploymentOptions): Promise<HaDeployment> {
    const redis = await SentinelRedis.start(options.redisReplicas);
    const registries: RegistryProcess[] = [];
    try {
      const env = {
        ...s3.registryEnv({ prefix: options.s3Prefix }),
        ...redis.registryEnv({ minReplicasAcked: options.minReplicasAcked }),
        ...options.env,
      };
      // One at a time: Node processes starting together on a loaded 2-core machine all start slowly.
      for (let index = 0; index < options.replicas; index++)
        registries.push(await RegistryProcess.start({ env, args: options.args ?? [], startTimeoutMs: START_TIMEOUT_MS }));
      const balancer = await Haproxy.start(registries.map((registry) => registry.port));
      return new HaDeployment(redis, registries, balancer);
    } catch (error) {
      await Promise.allSettled(registries.map((registry) => registry.destroy()));
      await redis.stop();
      throw error;
    }
  }

  /** Every registry's output, for failure messages. */
  get logs(): string {
    return this.registries.map((registry, index) => `--- replica ${index} ---\n${registry.logs}`).join('\n');
  }

  async stop(): Promise<void> {
    await this.balancer.stop();
    await Promise.allSettled(this.registries.map((registry) => registry.destroy()));
    await this.redis.stop();
  }
}
