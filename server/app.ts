import type Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import type { Logger } from '../platform/logger.js';
import { errorMiddleware } from './http/error-middleware.js';
import { requestLog } from './http/request-log.js';
import { assertExactMatching, guardedRoutes, routeEntries, type RouteEntry } from './http/router.js';
import type { RegistryServices } from './routes/context.js';
import { createRegistryRouter, unmatchedRequests } from './routes/index.js';
import { refuseWritesWhenReadOnly } from './routes/maintenance.js';
import { operatorRouters, type OperatorApis } from './routes/served.js';

/** Operations: request metrics (outermost) and the services behind the operators' routes. */
export interface OpsExtensions {
  httpMetrics: Middleware;
  /** Holds back a write's answer until Redis replicas confirm it (redis.minReplicasAcked). */
  durableWrites: Middleware;
  apis: Omit<OperatorApis, 'auth' | 'gc' | 'deploy' | 'builds'>;
}

/** A served route and the guard in front of it: `registry` routes declare their access themselves. */
export interface ServedRoute extends RouteEntry {
  guard: 'registry' | 'admin' | 'open';
}

export interface RegistryApp {
  app: Koa;
  routes: ServedRoute[];
}

/**
 * Every guard is tied to the routes it guards, never to a path prefix: the read-only guard to the /v2/
 * router (it refuses that router's write methods), the admin guard to each admin router, the access a /v2/
 * route needs to the route itself. A request no router serves is 404 in the spec's error format.
 */
export function createApp(
  services: RegistryServices,
  logger: Logger,
  ops: OpsExtensions,
  features: Pick<OperatorApis, 'auth' | 'gc' | 'deploy' | 'builds'>,
  adminGuard: Middleware,
): RegistryApp {
  const app = new Koa();
  // Errors are rendered by errorMiddleware; Koa's own handler would only print them again.
  app.silent = true;
  const router = createRegistryRouter(services);
  const served = operatorRouters({ ...features, ...ops.apis });
  for (const each of served.open) assertExactMatching(each);
  app.use(ops.httpMetrics);
  app.use(requestLog(logger));
  app.use(async (ctx, next) => {
    ctx.set('Docker-Distribution-API-Version', 'registry/2.0');
    await next();
  });
  app.use(errorMiddleware);
  app.use(ops.durableWrites);
  app.use(unmatchedRequests(router));
  app.use(guardedRoutes(router, refuseWritesWhenReadOnly(ops.apis.maintenance)));
  for (const adminRouter of served.admin) app.use(guardedRoutes(adminRouter, adminGuard));
  for (const openRouter of served.open) app.use(openRouter.routes());
  return {
    app,
    routes: [...describe([router], 'registry'), ...describe(served.admin, 'admin'), ...describe(served.open, 'open')],
  };
}

function describe(routers: Router[], guard: ServedRoute['guard']): ServedRoute[] {
  return routers.flatMap((each) => routeEntries(each).map((route) => ({ ...route, guard })));
}
