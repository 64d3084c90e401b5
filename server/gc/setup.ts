import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/logger.js';
import type { Config } from '../config.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { GcAdminServices } from '../routes/admin-gc.js';
import type { BlobStore } from '../storage/blob-store.js';
import { GarbageCollector, type GcReport } from './collector.js';
import { BlobCommitGuard } from './commit-guard.js';
import { gcOptionsFromConfig } from './gc-run.js';
import { RedisGcStore } from '../metadata/redis-gc-store.js';
import { scheduleGc, scheduleRepeating } from './scheduler.js';
import { UploadPurger } from './upload-purge.js';

export interface RegistryGc {
  collector: GarbageCollector;
  /** For the upload service: waits out a collection of a digest before committing its bytes. */
  commitGuard: BlobCommitGuard;
  /** What POST /admin/v1/gc runs; undefined when gc.adminApi is off, and it is not served. */
  adminApi: GcAdminServices | undefined;
  /** Stops the schedules (collection, upload purge) and waits for runs in progress. */
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
  const collector = new GarbageCollector(metadata, new RedisGcStore(collectorRedis, config.redis.keyPrefix), store, logger, onReport);
  const options = gcOptionsFromConfig(config.gc, false);
  const stopSchedule =
    config.gc.intervalSeconds > 0 ? scheduleGc(collector, options, config.gc.intervalSeconds * 1000, logger) : async () => undefined;
  const purger = new UploadPurger(
    metadata,
    new RedisGcStore(collectorRedis, config.redis.keyPrefix),
    store,
    { ...options, uploadMaxAgeMs: config.uploads.purge.maxAgeSeconds * 1000 },
    logger,
  );
  const stopPurge = config.uploads.purge.enabled
    ? schedulePurge(purger, config.uploads.purge.intervalSeconds * 1000, logger)
    : async () => undefined;
  return {
    collector,
    commitGuard: new BlobCommitGuard(metadata, new RedisGcStore(redis, config.redis.keyPrefix), store),
    adminApi: config.gc.adminApi ? { collector, options } : undefined,
    stop: async () => {
      await Promise.all([stopSchedule(), stopPurge()]);
      collectorRedis.disconnect();
    },
  };
}

// A registry restarted more often than the interval must still purge: the first run comes soon after start.
const FIRST_PURGE_DELAY_MS = 60_000;

function schedulePurge(purger: UploadPurger, intervalMs: number, logger: Logger): () => Promise<void> {
  return scheduleRepeating(
    () => purger.run(),
    Math.min(intervalMs, FIRST_PURGE_DELAY_MS),
    intervalMs,
    (error) => logger.error({ err: error }, 'scheduled upload purge failed'),
  );
}
