import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/logger.js';
import type { Config } from '../config.js';
import type { RegistryMetrics } from '../metrics/metrics.js';
import type { BuildEventSink } from '../webhooks/build-events.js';
import { BuildQueue } from './build-queue.js';
import { BuildService } from './build-service.js';
import { LeaseSweeper, sweepIntervalMs } from './lease-sweeper.js';
import { ProjectStore } from './project-store.js';
import { WorkerService, type BuildObserver, type PushTokens } from './worker-service.js';

export interface RegistryBuilds {
  builds: BuildService;
  workers: WorkerService;
  maxWebhookBytes: number;
  workerTokenTtlMs: number;
  /** Stops the registry's lease sweep. */
  stop: () => Promise<void>;
}

/** Automated builds on the registry's Redis: projects, the queue, the workers' API, their metrics and outgoing build events. */
export function createBuilds(
  config: Config,
  redis: Redis,
  { metrics, buildEvents }: { metrics: RegistryMetrics; buildEvents: BuildEventSink },
  pushTokens: PushTokens,
  logger: Logger,
): RegistryBuilds {
  const log = logger.child({ component: 'builds' });
  const settings = config.builds;
  const prefix = config.redis.keyPrefix;
  const projects = new ProjectStore(redis, prefix);
  const queue = new BuildQueue(redis, prefix, Math.ceil(settings.retentionDays * 86400));
  metrics.gaugeOnScrape('berth_build_queue_depth', 'Builds waiting for a worker.', 'queue', async () => [['builds', await queue.depth()]]);
  metrics.gaugeOnScrape('berth_build_workers_waiting', 'Build workers asking for work now.', 'queue', async () => [
    ['builds', await queue.waitingWorkers()],
  ]);
  const observer: BuildObserver = {
    started: (record, waitedMs) => {
      metrics.buildQueueWait.observe(waitedMs / 1000);
      void buildEvents.emit('build.started', record);
    },
    finished: (record) => {
      if (record.claimedAt !== null && record.finishedAt !== null)
        metrics.buildDuration.observe({ outcome: record.state }, (record.finishedAt - record.claimedAt) / 1000);
      if (record.state === 'succeeded' || record.state === 'failed') void buildEvents.emit(`build.${record.state}`, record);
    },
  };
  const sweeper = new LeaseSweeper(queue, sweepIntervalMs(settings.leaseSeconds), log);
  sweeper.start();
  return {
    builds: new BuildService(projects, queue, settings, log),
    workers: new WorkerService(redis, prefix, queue, projects, settings, observer, pushTokens, log),
    maxWebhookBytes: settings.maxWebhookBytes,
    workerTokenTtlMs: settings.workerTokenTtlSeconds * 1000,
    stop: () => sweeper.stop(),
  };
}
