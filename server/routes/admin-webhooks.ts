import Router from '@koa/router';
import type { Context } from 'koa';
import { RegistryError } from '../errors.js';
import type { WebhookQueue } from '../webhooks/queue.js';
import type { WebhookEndpoint } from '../webhooks/webhook-config.js';

const DEFAULT_LOG_LIMIT = 100;

/**
 * The webhook endpoints (without secrets or header values), the delivery log, and each endpoint's
 * dead letters. Under /admin/, so the admin check guards them when auth is on.
 */
export function webhookAdminRouter(endpoints: WebhookEndpoint[], queue: WebhookQueue): Router {
  const router = new Router({ prefix: '/admin/v1/webhooks' });
  router.get('/', async (ctx: Context) => {
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
  router.get('/deliveries', async (ctx: Context) => {
    const limit = Number(ctx.query.limit ?? DEFAULT_LOG_LIMIT);
    if (!Number.isInteger(limit) || limit < 1) throw new RegistryError('UNSUPPORTED', 400, 'limit must be a positive integer');
    const endpoint = typeof ctx.query.endpoint === 'string' ? ctx.query.endpoint : undefined;
    ctx.body = { deliveries: await queue.log(limit, endpoint) };
  });
  router.get('/:endpoint/dead-letters', async (ctx: Context) => {
    const name = ctx.params.endpoint ?? '';
    if (!endpoints.some((endpoint) => endpoint.name === name)) throw new RegistryError('NAME_UNKNOWN', 404, `no webhook endpoint ${name}`);
    ctx.body = { events: await queue.deadLetters(name) };
  });
  return router;
}
