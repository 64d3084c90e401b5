import { existsSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/logger.js';
import type { Config } from '../config.js';
import { connectRedis } from './connect.js';
import { EmbeddedRedis } from './embedded-redis.js';

/**
 * A client for the Redis of a registry, for commands run beside it: the configured one, or the embedded
 * one of a registry running on the data directory (which owns that Redis: the command cannot start it).
 */
export function openRegistryRedis(config: Config, logger: Logger): Redis {
  if (config.redis.url || config.redis.sentinel) return connectRedis({ config: config.redis }, logger);
  const { socketPath } = new EmbeddedRedis(config.dataDir, config.redis.embedded.binary, logger);
  if (!existsSync(socketPath)) throw new Error(`no registry is running on ${config.dataDir}: start it first (it owns the embedded Redis)`);
  return connectRedis({ socketPath }, logger);
}
