import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// Registry latencies range from sub-millisecond metadata reads to minutes-long blob streams.
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const GC_BUCKETS = [0.1, 1, 10, 60, 300, 1800, 3600];
const BUILD_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/**
 * Every Prometheus metric the registry exports, on one prom-client registry (not the global one, so two
 * registries in one process, as in tests, never collide). Names follow Prometheus conventions: a `berth_`
 * prefix, base units (seconds, bytes) in the name, `_total` on counters.
 */
export class RegistryMetrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: 'berth_http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'berth_http_request_duration_seconds',
    help: 'Time from receiving a request to sending the last byte of its response.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly bytesReceived = new Counter({
    name: 'berth_http_received_bytes_total',
    help: 'Request body bytes received, by route template.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly bytesSent = new Counter({
    name: 'berth_http_sent_bytes_total',
    help: 'Response body bytes sent, by route template.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly storageDuration = new Histogram({
    name: 'berth_storage_operation_duration_seconds',
    help: 'Blob store operations, by store kind, action and outcome.',
    labelNames: ['store', 'action', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly activeUploads = new Gauge({
    name: 'berth_uploads_active',
    help: 'Upload chunks being received into the blob store by this process right now.',
    registers: [this.registry],
  });
  readonly gcRuns = new Counter({
    name: 'berth_gc_runs_total',
    help: 'Garbage collections finished by this process, by mode (sweep or dry_run).',
    labelNames: ['mode'] as const,
    registers: [this.registry],
  });
  readonly gcDuration = new Histogram({
    name: 'berth_gc_duration_seconds',
    help: 'Duration of finished garbage collections.',
    buckets: GC_BUCKETS,
    registers: [this.registry],
  });
  readonly gcRemovedBytes = new Counter({
    name: 'berth_gc_removed_bytes_total',
    help: 'Blob bytes deleted by garbage collection.',
    registers: [this.registry],
  });
  readonly webhookDeliveries = new Counter({
    name: 'berth_webhook_deliveries_total',
    help: 'Webhook delivery attempts, by endpoint and outcome (delivered, failed, dead_lettered).',
    labelNames: ['endpoint', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly redisDuration = new Histogram({
    name: 'berth_redis_command_duration_seconds',
    help: 'Redis command round trips, by command.',
    labelNames: ['command'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly buildQueueWait = new Histogram({
    name: 'berth_build_queue_wait_seconds',
    help: 'Time from a build being queued to a worker claiming it.',
    buckets: BUILD_BUCKETS,
    registers: [this.registry],
  });
  readonly buildDuration = new Histogram({
    name: 'berth_build_duration_seconds',
    help: 'Time from a worker claiming a build to its end, by outcome (succeeded, failed, cancelled).',
    labelNames: ['outcome'] as const,
    buckets: BUILD_BUCKETS,
    registers: [this.registry],
  });
  readonly deployControllerPass = new Histogram({
    name: 'berth_deploy_controller_pass_seconds',
    help: 'One pass of the deployment controller over every service, in the registry replica holding its lease.',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  recordGc(report: { dryRun: boolean; durationMs: number; bytesDeleted: number }): void {
    this.gcRuns.inc({ mode: report.dryRun ? 'dry_run' : 'sweep' });
    this.gcDuration.observe(report.durationMs / 1000);
    // A dry run deletes nothing; its bytesDeleted is what a sweep would remove.
    if (!report.dryRun) this.gcRemovedBytes.inc(report.bytesDeleted);
  }

  /** A gauge whose value is read when Prometheus scrapes, e.g. a queue length kept in Redis. */
  gaugeOnScrape(name: string, help: string, labelName: string, read: () => Promise<Array<[string, number]>>): void {
    new Gauge({
      name,
      help,
      labelNames: [labelName],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const [label, value] of await read()) this.set({ [labelName]: label }, value);
      },
    });
  }
}
