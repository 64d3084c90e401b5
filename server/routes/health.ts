import type Router from '@koa/router';
import type { Context } from 'koa';
import type { ReadinessChecks } from '../health/health.js';
import { createRouter } from '../http/router.js';

/** GET /livez: the process serves HTTP. GET /readyz: 200 when every readiness check passes, else 503 naming the failing one. */
export function healthRouter(readiness: ReadinessChecks): Router {
  const router = createRouter();
  router.get('/livez', (ctx: Context) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx: Context) => {
    const report = await readiness.run();
    ctx.status = report.ready ? 200 : 503;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: report.ready ? 'ok' : 'unavailable', checks: report.checks };
  });
  return router;
}
