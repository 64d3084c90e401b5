import type Router from '@koa/router';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import { gcAdminRouter } from '../routes/admin-gc.js';
import type { BlobStore } from '../storage/blob-store.js';
import { GarbageCollector, type GcReport } from './collector.js';
import { BlobCommitGuard } from './commit-guard.js';
import { gcOptionsFromConfig } from './gc-run.js';
import { GcStore } from './gc-store.js';
import { scheduleGc } from './scheduler.js';

export interface RegistryGc {
  collector: GarbageCollector;
  /** For the upload service: waits out a collection of a digest before committing its bytes. */
  commitGuard: BlobCommitGuard;
  /** POST /admin/v1/gc, when gc.adminApi is on. */
  router?: Router;
  /** Stops the schedule (if any) and waits for a run in progress. */
  stop(): Promise<void>;
}

/** The collector on the registry's Redis and store, scheduled and exposed as the `gc` config says. */
export function createGc(
  config: Config,
  redis: Redis,
  metadata: MetadataStore,
  store: BlobStore,
  logger: Logger,
  onReport?: (report: GcReport) => void,
): RegistryGc {
  // The collector gets its own connection (opened on its first run): commands on one connection are answered
  // in order, so requests sharing it would wait behind each batch the collector has in flight, whereas Redis
  // serves separate connections in turn. Upload commits (the commit guard) stay on the requests' connection.
  const collectorRedis = redis.duplicate({ lazyConnect: true });
  collectorRedis.on('error', (error: Error) => logger.warn({ err: error }, 'garbage collector redis connection error'));
  const collector = new GarbageCollector(metadata, new GcStore(collectorRedis, config.redis.keyPrefix), store, logger, onReport);
  const options = gcOptionsFromConfig(config.gc, false);
  const stopSchedule = config.gc.intervalSeconds > 0 ? scheduleGc(collector, options, config.gc.intervalSeconds * 1000, logger) : async () => undefined;
  return {
    collector,
    commitGuard: new BlobCommitGuard(metadata, new GcStore(redis, config.redis.keyPrefix), store),
    router: config.gc.adminApi ? gcAdminRouter(collector, options) : undefined,
    stop: async () => {
      await stopSchedule();
      collectorRedis.disconnect();
    },
  };
}
