import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';

/**
 * Every router of the server. Paths match exactly: @koa/router's defaults match `/Admin/` as `/admin/` and
 * `/users/` as `/users`, and any check written against the raw path then sees another path than the one
 * the router served. Exact matching makes a path either one route's or nobody's (404).
 */
export function createRouter(): Router {
  return new Router({ sensitive: true, strict: true });
}

/** One served route: its methods (HEAD with GET) and its path template. */
export interface RouteEntry {
  methods: string[];
  path: string;
}

export function routeEntries(router: Router): RouteEntry[] {
  return router.stack
    .filter((layer) => layer.methods.length > 0)
    .map((layer) => ({ methods: [...layer.methods], path: String(layer.path) }));
}

/**
 * The router's routes with `guard` run in front of each of them, decided by the router's own match of the
 * request (path and method): a request no route of this router serves passes through the router untouched
 * (which still records the paths it knows, for the 405 answers), one it serves cannot reach the handler
 * without the guard.
 */
export function guardedRoutes(router: Router, guard: Middleware): Middleware {
  assertExactMatching(router);
  const routes = router.routes() as unknown as Middleware;
  return (ctx: Context, next: Next) => {
    if (!router.match(ctx.path, ctx.method).route) return routes(ctx, next);
    return guard(ctx, () => routes(ctx, next));
  };
}

/** A router built by hand with the defaults would reopen the case and trailing-slash confusion: refused at startup. */
export function assertExactMatching(router: Router): void {
  if (router.opts.sensitive !== true || router.opts.strict !== true) {
    throw new Error(
      `router with ${routeEntries(router)
        .map((route) => route.path)
        .join(', ')} must come from createRouter()`,
    );
  }
}

export const PASS_THROUGH: Middleware = (_ctx: Context, next: Next) => next();
