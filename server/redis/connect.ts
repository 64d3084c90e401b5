import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../../platform/logger.js';

/** A client for the registry's metadata. Failures surface quickly so requests get a 503, not a hang. */
export function connectRedis(target: { url: string } | { socketPath: string }, logger: Logger): Redis {
  const options = {
    enableAutoPipelining: true,
    maxRetriesPerRequest: 2,
    connectTimeout: 5_000,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2_000),
  };
  const redis = 'url' in target ? new Redis(target.url, options) : new Redis({ ...options, path: target.socketPath });
  let healthy = true;
  redis.on('error', (error: Error) => {
    if (healthy) logger.error({ err: error }, 'redis connection error');
    healthy = false;
  });
  redis.on('ready', () => {
    if (!healthy) logger.info('redis connection restored');
    healthy = true;
  });
  return redis;
}

/** Whether a Redis server answers PING now (not while it is still LOADING its append-only file). */
export async function redisAnswers(target: Pick<RedisOptions, 'path' | 'host' | 'port'>): Promise<boolean> {
  try {
    await withOneShotClient(target, (probe) => probe.ping());
    return true;
  } catch {
    return false;
  }
}

/** Runs `work` on a connection of its own that neither retries nor reconnects, then closes it. */
export async function withOneShotClient<T>(
  target: Pick<RedisOptions, 'path' | 'host' | 'port'>,
  work: (redis: Redis) => Promise<T>,
): Promise<T> {
  const probe = new Redis({ ...target, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return await work(probe);
  } finally {
    probe.disconnect();
  }
}
