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
 * `routes`: what is served beside /v2/, in order. When auth is on its middleware comes first: the token
 * endpoint, the admin API and the admin check on every /admin/ path, so it guards the routes after it too.
 */
export function createApp(services: RegistryServices, logger: Logger, ops: OpsExtensions, routes: Middleware[]): Koa {
  const app = new Koa();
  // Errors are rendered by errorMiddleware; Koa's own handler would only print them again.
  app.silent = true;
  const router = createRegistryRouter(services);
  app.use(ops.httpMetrics);
  app.use(requestLog(logger));
  app.use(async (ctx, next) => {
    ctx.set('Docker-Distribution-API-Version', 'registry/2.0');
    await next();
  });
  app.use(errorMiddleware);
  app.use(ops.readOnlyGuard);
  app.use(unmatchedRequests(router));
  app.use(router.routes());
  for (const route of [...routes, ...ops.routers.map((opsRouter) => opsRouter.routes())]) app.use(route);
  return app;
}
