import type { Logger } from '../../platform/logger.js';
import type { Lease, LeaseFence, MetadataStore } from '../metadata/metadata-store.js';
import { LeaseNames } from '../metadata/metadata-store.js';
import type { RegistryMetrics } from '../metrics/metrics.js';
import { deliver } from './delivery.js';
import type { QueuedEvent, WebhookQueue } from './queue.js';
import type { WebhookEndpoint, WebhooksConfig } from './webhook-config.js';

// One replica delivers to an endpoint at a time; a dead replica's lease lapses after LEASE_MS.
const LEASE_MS = 30_000;
const RENEW_EVERY_MS = LEASE_MS / 3;
// How often an idle worker looks for events queued by other replicas (its own enqueues wake it at once).
const IDLE_POLL_MS = 500;

/**
 * Delivers one endpoint's queue, head first, in order: a failing head is retried with exponential backoff
 * and full jitter and blocks the events behind it until it is delivered or dead-lettered. Delivery is at
 * least once: only a process dying between the receiver's 2xx and the pop resends an event (same event id).
 */
export class EndpointWorker {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Aborts a hanging delivery at shutdown, so a dead endpoint never delays a restart. */
  private readonly stopping = new AbortController();
  /** When the failed head may be tried again. */
  private retryAt = 0;

  constructor(
    private readonly endpoint: WebhookEndpoint,
    private readonly config: WebhooksConfig,
    private readonly queue: WebhookQueue,
    private readonly metadata: MetadataStore,
    private readonly metrics: RegistryMetrics,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    this.nudge();
    await this.loop;
  }

  /** Ends an idle wait or a backoff early: something new was queued. */
  nudge(): void {
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const lease = await this.metadata.acquireLease(LeaseNames.webhook(this.endpoint.name), LEASE_MS);
        if (!lease) {
          await this.pause(IDLE_POLL_MS);
          continue;
        }
        await this.drainHolding(lease).finally(() => lease.release().catch(() => undefined));
      } catch (error) {
        // Redis down or restarting: try again shortly, queued events are safe in it.
        this.logger.warn({ err: error, endpoint: this.endpoint.name }, 'webhook worker error; retrying');
        await this.pause(IDLE_POLL_MS);
      }
    }
  }

  private async drainHolding(lease: Lease): Promise<void> {
    let renewedAt = Date.now();
    while (this.running) {
      if (Date.now() - renewedAt >= RENEW_EVERY_MS) {
        if (!(await lease.renew())) return;
        renewedAt = Date.now();
      }
      // Backoffs can outlast the lease, so they are waited out in slices between renewals.
      const backoffLeft = this.retryAt - Date.now();
      if (backoffLeft > 0) {
        await this.pause(Math.min(backoffLeft, RENEW_EVERY_MS));
        continue;
      }
      const head = await this.queue.head(this.endpoint.name);
      if (!head) await this.pause(IDLE_POLL_MS);
      else await this.attempt(head.raw, head.event, lease.fence);
    }
  }

  private async attempt(raw: string, event: QueuedEvent, fence: LeaseFence): Promise<void> {
    const name = this.endpoint.name;
    const about = { endpoint: name, eventId: event.id, action: event.action, repository: event.repository };
    const result = await deliver(this.endpoint, event.id, event.body, this.stopping.signal);
    // An attempt cut short by shutdown is not a failure of the endpoint; the event stays first in line.
    if (!this.running) return;
    if (result.ok) {
      const attempt = (await this.queue.attempts(name, event.id)) + 1;
      await this.queue.finish(raw, { ...about, attempt, outcome: 'delivered', status: result.status, at: new Date().toISOString() }, fence);
      this.metrics.webhookDeliveries.inc({ endpoint: name, outcome: 'delivered' });
      return;
    }
    const attempt = await this.queue.recordFailure({ ...about, status: result.status, error: result.error });
    this.metrics.webhookDeliveries.inc({ endpoint: name, outcome: 'failed' });
    if (attempt >= this.config.maxAttempts) {
      await this.queue.finish(
        raw,
        {
          ...about,
          attempt,
          outcome: 'dead_lettered',
          status: result.status,
          error: result.error,
          at: new Date().toISOString(),
        },
        fence,
      );
      this.metrics.webhookDeliveries.inc({ endpoint: name, outcome: 'dead_lettered' });
      this.logger.warn({ ...about, attempts: attempt }, 'webhook event dead-lettered');
      return;
    }
    this.retryAt = Date.now() + backoffMs(attempt, this.config.backoff);
  }

  private async pause(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }
}

/** Exponential backoff with full jitter: uniformly up to initial * 2^(attempt-1), capped. */
export function backoffMs(attempt: number, backoff: WebhooksConfig['backoff']): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (attempt - 1));
  return Math.round(Math.random() * ceiling);
}
