import type { Logger } from '../../platform/logger.js';
import { matchesPattern } from '../auth/patterns.js';
import { distributionEvent, type EventSource } from './envelope.js';
import type { EventSink, RegistryEvent } from './events.js';
import type { WebhookQueue } from './queue.js';
import type { WebhookEndpoint } from './webhook-config.js';

/** The event sink when webhooks are configured: filters per endpoint and queues one envelope for all of them. */
export class WebhookNotifier implements EventSink {
  constructor(
    private readonly endpoints: WebhookEndpoint[],
    private readonly queue: WebhookQueue,
    private readonly source: EventSource,
    private readonly logger: Logger,
    /** Wakes this process's worker for an endpoint, so delivery starts without waiting for its next poll. */
    private readonly nudge: (endpoint: string) => void,
  ) {}

  async emit(event: RegistryEvent): Promise<void> {
    // As in Distribution, HEAD requests (existence checks before a push) are not pulls.
    if (event.origin?.method === 'HEAD') return;
    const targets = this.endpoints.filter((endpoint) => wants(endpoint, event)).map((endpoint) => endpoint.name);
    if (targets.length === 0) return;
    const envelope = distributionEvent(event, this.source);
    await queueEnvelope(this.queue, this.nudge, targets, envelope, event.repository).catch((error: unknown) =>
      this.logger.error({ err: error, action: event.action, repository: event.repository }, 'webhook event could not be queued'),
    );
  }
}

/** Queues one signed-envelope event (`{"events": [event]}`) for every target and wakes their workers. */
export async function queueEnvelope(
  queue: WebhookQueue,
  nudge: (endpoint: string) => void,
  targets: string[],
  event: { id: string; action: string },
  repository: string,
): Promise<void> {
  await queue.enqueue(targets, { id: event.id, action: event.action, repository, body: JSON.stringify({ events: [event] }) });
  for (const target of targets) nudge(target);
}

function wants(endpoint: WebhookEndpoint, event: RegistryEvent): boolean {
  const actionWanted = endpoint.actions.length === 0 || endpoint.actions.includes(event.action);
  return actionWanted && wantsRepository(endpoint, event.repository);
}

export function wantsRepository(endpoint: WebhookEndpoint, repository: string): boolean {
  return endpoint.repositories.length === 0 || endpoint.repositories.some((pattern) => matchesPattern(pattern, repository));
}
