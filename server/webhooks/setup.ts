import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/logger.js';
import type { Config } from '../config.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { RegistryMetrics } from '../metrics/metrics.js';
import type { WebhookAdminServices } from '../routes/admin-webhooks.js';
import { BuildEventNotifier, NO_BUILD_EVENTS, type BuildEventSink } from './build-events.js';
import { NO_EVENTS, type EventSink } from './events.js';
import { WebhookNotifier } from './notifier.js';
import { WebhookQueue } from './queue.js';
import { EndpointWorker } from './worker.js';

export interface RegistryWebhooks {
  events: EventSink;
  buildEvents: BuildEventSink;
  /** What the admin routes (routes/admin-webhooks.ts) read and redeliver. */
  admin: WebhookAdminServices;
  /** Stops the delivery workers; queued events stay in Redis for the next start. */
  stop(): Promise<void>;
}

/** The event sink, a delivery worker per configured endpoint, the admin services and the queue-depth gauge. */
export function createWebhooks(
  config: Config,
  redis: Redis,
  metadata: MetadataStore,
  metrics: RegistryMetrics,
  logger: Logger,
): RegistryWebhooks {
  const { endpoints } = config.webhooks;
  const queue = new WebhookQueue(redis, config.redis.keyPrefix, config.webhooks.logSize);
  const log = logger.child({ component: 'webhooks' });
  const workers = new Map(
    endpoints.map((endpoint) => [endpoint.name, new EndpointWorker(endpoint, config.webhooks, queue, metadata, metrics, log)]),
  );
  for (const worker of workers.values()) worker.start();
  metrics.gaugeOnScrape('berth_webhook_queue_depth', 'Events waiting for delivery, by endpoint.', 'endpoint', () =>
    Promise.all(endpoints.map(async (endpoint): Promise<[string, number]> => [endpoint.name, await queue.depth(endpoint.name)])),
  );
  const source = { addr: `${hostname()}:${config.http.port}`, instanceID: randomUUID() };
  const nudge = (name: string) => workers.get(name)?.nudge();
  return {
    events: endpoints.length === 0 ? NO_EVENTS : new WebhookNotifier(endpoints, queue, source, log, nudge),
    buildEvents: endpoints.length === 0 ? NO_BUILD_EVENTS : new BuildEventNotifier(endpoints, queue, source, log, nudge),
    admin: { endpoints, queue, nudge },
    stop: async () => {
      await Promise.all([...workers.values()].map((worker) => worker.stop()));
    },
  };
}
