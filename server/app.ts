import type Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import type { Logger } from 'pino';
import { errorMiddleware } from './http/error-middleware.js';
import { requestLog } from './http/request-log.js';
import type { RegistryServices } from './routes/context.js';
import { createRegistryRouter, unmatchedRequests } from './routes/index.js';

/** Operations: request metrics (outermost), the read-only guard (before any route), and their own routes. */
export interface OpsExtensions {
  httpMetrics: Middleware;
  readOnlyGuard: Middleware;
  routers: Router[];
}

/**
 * `auth`: the token endpoint and admin API, and the admin check on every /admin/ path (so it guards gcRouter
 * too), when auth is on. `gcRouter`: POST /admin/v1/gc, when enabled.
 */
export function createApp(services: RegistryServices, logger: Logger, auth?: Middleware, gcRouter?: Router, ops?: OpsExtensions): Koa {
  const app = new Koa();
  // Errors are rendered by errorMiddleware; Koa's own handler would only print them again.
  app.silent = true;
  const router = createRegistryRouter(services);
  if (ops) app.use(ops.httpMetrics);
  app.use(requestLog(logger));
  app.use(async (ctx, next) => {
    ctx.set('Docker-Distribution-API-Version', 'registry/2.0');
    await next();
  });
  app.use(errorMiddleware);
  if (ops) app.use(ops.readOnlyGuard);
  app.use(unmatchedRequests(router));
  app.use(router.routes());
  if (auth) app.use(auth);
  if (gcRouter) app.use(gcRouter.routes());
  for (const opsRouter of ops?.routers ?? []) app.use(opsRouter.routes());
  return app;
}
