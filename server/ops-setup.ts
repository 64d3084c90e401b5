import type { Redis } from 'ioredis';
import type { Logger } from '../platform/logger.js';
import type { OpsExtensions } from './app.js';
import type { Config } from './config.js';
import { ReadinessChecks } from './health/health.js';
import { MaintenanceMode } from './maintenance/read-only.js';
import { RegistryKeys } from './metadata/keys.js';
import type { MetadataStore } from './metadata/metadata-store.js';
import { acknowledgeDurably, ReplicaAcknowledger } from './metadata/replica-ack.js';
import { httpMetrics } from './metrics/http-metrics.js';
import { RegistryMetrics } from './metrics/metrics.js';
import { timeRedisCommands } from './metrics/redis-timing.js';
import { TimedBlobStore } from './metrics/timed-store.js';
import type { BlobStore } from './storage/blob-store.js';
import type { BuildEventSink } from './webhooks/build-events.js';
import type { EventSink } from './webhooks/events.js';
import { createWebhooks } from './webhooks/setup.js';

export interface RegistryOps {
  metrics: RegistryMetrics;
  /** The blob store with its operations timed; the services use this one. */
  store: BlobStore;
  events: EventSink;
  buildEvents: BuildEventSink;
  app: OpsExtensions;
  stop(): Promise<void>;
}

/**
 * Metrics, health probes, webhooks and maintenance mode around the registry's Redis and blob store.
 * `redisWriteProblem` says why the embedded Redis refuses writes, for readiness.
 */
export function createOps(
  config: Config,
  redis: Redis,
  metadata: MetadataStore,
  rawStore: BlobStore,
  logger: Logger,
  redisWriteProblem: () => string | undefined,
): RegistryOps {
  const metrics = new RegistryMetrics();
  timeRedisCommands(redis, metrics);
  const store = new TimedBlobStore(rawStore, metrics);
  const webhooks = createWebhooks(config, redis, metadata, metrics, logger);
  const acknowledger = replicaAcknowledger(config, redis);
  const maintenance = new MaintenanceMode(
    redis,
    new RegistryKeys(config.redis.keyPrefix).maintenanceReadOnly(),
    config.maintenance.readOnly,
  );
  return {
    metrics,
    store,
    events: webhooks.events,
    buildEvents: webhooks.buildEvents,
    app: {
      httpMetrics: httpMetrics(metrics),
      durableWrites: acknowledger ? acknowledgeDurably(acknowledger) : async (_ctx, next) => next(),
      apis: { metrics, readiness: new ReadinessChecks(redis, rawStore, redisWriteProblem), webhooks: webhooks.admin, maintenance },
    },
    stop: async () => {
      await webhooks.stop();
      acknowledger?.close();
    },
  };
}

function replicaAcknowledger({ redis: options }: Config, redis: Redis): ReplicaAcknowledger | undefined {
  if (options.minReplicasAcked === 0) return undefined;
  const marker = new RegistryKeys(options.keyPrefix).durableAckMarker();
  return new ReplicaAcknowledger(redis, marker, options.minReplicasAcked, options.ackTimeoutMs);
}
