import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../../platform/logger.js';
import type { RedisConfig } from './redis-config.js';

// While Redis is away (a restart, a failover) a command is retried on each reconnection, this far apart,
// until redis.unavailableWaitMs has passed; then it fails and the request gets 503 with Retry-After.
const RECONNECT_DELAY_MS = 200;

/** Where the registry's Redis is: the embedded one's socket, or the configured URL or sentinels. */
export type RedisTarget = { socketPath: string } | { config: RedisConfig };

/**
 * The one factory of every Redis client the registry and its commands use (requests, collector, webhooks,
 * leases, acknowledgements): through Sentinel it follows the primary across a failover by itself, and a
 * request waits at most redis.unavailableWaitMs for it to come back.
 */
export function connectRedis(target: RedisTarget, logger: Logger, overrides: RedisOptions = {}): Redis {
  const options = { ...redisOptions(target), ...overrides };
  const redis = 'config' in target && target.config.url ? new Redis(target.config.url, options) : new Redis(options);
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

/** ioredis options for a target; pure, so the mapping from the configuration is checked without a server. */
export function redisOptions(target: RedisTarget): RedisOptions {
  const waitMs = 'config' in target ? target.config.unavailableWaitMs : 5_000;
  const common: RedisOptions = {
    enableAutoPipelining: true,
    maxRetriesPerRequest: Math.max(1, Math.ceil(waitMs / RECONNECT_DELAY_MS)),
    connectTimeout: 5_000,
    retryStrategy: () => RECONNECT_DELAY_MS,
  };
  if ('socketPath' in target) return { ...common, path: target.socketPath };
  const { sentinel, tls } = target.config;
  const tlsOptions = tls.enabled ? readTls(tls) : undefined;
  if (!sentinel) return { ...common, ...(tlsOptions ? { tls: tlsOptions } : {}) };
  return {
    ...common,
    sentinels: sentinel.sentinels,
    name: sentinel.masterName,
    role: 'master',
    ...(sentinel.username ? { username: sentinel.username } : {}),
    ...(sentinel.password ? { password: sentinel.password } : {}),
    ...(sentinel.sentinelPassword ? { sentinelPassword: sentinel.sentinelPassword } : {}),
    ...(tlsOptions ? { tls: tlsOptions, sentinelTLS: tlsOptions, enableTLSForSentinelMode: true } : {}),
    // Not ioredis's failoverDetector: its +switch-master can arrive while the client is already reconnecting
    // (the primary died), and that cancelled reconnection ends the client for good ("Connection is closed").
    // A dead primary breaks the connection anyway, and Sentinel kills the clients of a primary it demotes.
    sentinelRetryStrategy: () => RECONNECT_DELAY_MS,
    // A primary demoted by a failover refuses writes with READONLY: reconnect, which asks the sentinels for
    // the primary again. The command itself fails (a 503 the client retries), so a sentinel that still
    // names the demoted server cannot make it loop.
    reconnectOnError: (error: Error) => /^READONLY /.test(error.message),
  };
}

function readTls(tls: RedisConfig['tls']): ConnectionOptions {
  return {
    ...(tls.ca ? { ca: readFileSync(tls.ca) } : {}),
    ...(tls.cert ? { cert: readFileSync(tls.cert) } : {}),
    ...(tls.key ? { key: readFileSync(tls.key) } : {}),
    ...(tls.serverName ? { servername: tls.serverName } : {}),
  };
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
