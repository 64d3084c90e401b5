import type Router from '@koa/router';
import type { Context } from 'koa';
import { createRouter } from '../http/router.js';
import type { RegistryMetrics } from '../metrics/metrics.js';

/** GET /metrics in the Prometheus text format. */
export function metricsRouter(metrics: RegistryMetrics): Router {
  const router = createRouter();
  router.get('/metrics', async (ctx: Context) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  return router;
}
