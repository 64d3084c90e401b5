import type Router from '@koa/router';
import type { Context } from 'koa';
import { readBoundedBody } from '../../platform/body.js';
import type { RegistryBuilds } from '../builds/setup.js';
import { createRouter } from '../http/router.js';
import { declaredLength } from '../http/request-body.js';

/**
 * The forges' webhooks, one URL per project: open (the forge signs instead of logging in), the body read
 * raw and bounded so the signature is checked on exactly the bytes sent. It only queues: the answer comes
 * in milliseconds, as GitHub (10 s) and GitLab expect.
 */
export function buildHooksRouter({ builds, maxWebhookBytes }: RegistryBuilds): Router {
  const router = createRouter();
  router.post('/builds/v1/hooks/:project', async (ctx: Context) => {
    const source: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => ctx.req.iterator({ destroyOnReturn: false }) };
    const body = await readBoundedBody(source, { limit: maxWebhookBytes, declaredLength: declaredLength(ctx) });
    const outcome = await builds.receiveHook(ctx.params.project ?? '', (name) => ctx.get(name), body);
    ctx.status = outcome.status === 'queued' ? 202 : 200;
    ctx.body = outcome;
  });
  return router;
}
