import type Router from '@koa/router';
import type { Context } from 'koa';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { WebhookQueue } from '../webhooks/queue.js';
import type { WebhookEndpoint } from '../webhooks/webhook-config.js';
import { createRouter } from '../http/router.js';

export interface WebhookAdminServices {
  endpoints: WebhookEndpoint[];
  queue: WebhookQueue;
  /** Wakes an endpoint's worker when events were queued for it. */
  nudge(endpoint: string): void;
}

const DEFAULT_LOG_LIMIT = 100;
const BASE = '/admin/v1/webhooks';

/**
 * The webhook endpoints (without secrets or header values), the delivery log, and each endpoint's
 * dead letters, which can be queued again. An admin router: the admin guard runs in front of its routes.
 */
export function webhookAdminRouter({ endpoints, queue, nudge }: WebhookAdminServices): Router {
  const router = createRouter();
  const endpointName = (ctx: Context): string => {
    const name = ctx.params.endpoint ?? '';
    if (!endpoints.some((endpoint) => endpoint.name === name))
      throw new CodedError(DistributionErrors.NAME_UNKNOWN, `no webhook endpoint ${name}`);
    return name;
  };
  router.get(BASE, async (ctx: Context) => {
    ctx.body = {
      endpoints: await Promise.all(
        endpoints.map(async (endpoint) => ({
          name: endpoint.name,
          url: endpoint.url,
          repositories: endpoint.repositories,
          actions: endpoint.actions,
          headers: Object.keys(endpoint.headers),
          queued: await queue.depth(endpoint.name),
        })),
      ),
    };
  });
  router.get(`${BASE}/deliveries`, async (ctx: Context) => {
    const limit = Number(ctx.query.limit ?? DEFAULT_LOG_LIMIT);
    if (!Number.isInteger(limit) || limit < 1) throw new CodedError(DistributionErrors.UNSUPPORTED, 'limit must be a positive integer');
    const endpoint = typeof ctx.query.endpoint === 'string' ? ctx.query.endpoint : undefined;
    ctx.body = { deliveries: await queue.log(limit, endpoint) };
  });
  router.get(`${BASE}/:endpoint/dead-letters`, async (ctx: Context) => {
    ctx.body = { events: await queue.deadLetters(endpointName(ctx)) };
  });
  // Harbor's "re-send": after fixing the receiver, an operator sends the given-up events again.
  router.post(`${BASE}/:endpoint/dead-letters/redeliver`, async (ctx: Context) => {
    const name = endpointName(ctx);
    ctx.body = { requeued: await queue.redeliverDeadLetters(name) };
    nudge(name);
  });
  router.post(`${BASE}/:endpoint/dead-letters/:eventId/redeliver`, async (ctx: Context) => {
    const name = endpointName(ctx);
    const eventId = ctx.params.eventId ?? '';
    const requeued = await queue.redeliverDeadLetters(name, eventId);
    if (requeued === 0) throw new CodedError(DistributionErrors.NAME_UNKNOWN, `no dead letter ${eventId} for webhook endpoint ${name}`);
    ctx.body = { requeued };
    nudge(name);
  });
  return router;
}
