import type { Context, Middleware, Next } from 'koa';
import { CATALOG_ACCESS, repositoryAccess, type Access } from './scope.js';

/**
 * What each /v2/ route needs, declared next to the route: the router runs the guard's middleware before
 * the handler. With auth off every guard lets everything through.
 */
export interface AccessGuard {
  /** Any valid token (the /v2/ version check, which is how clients discover the token realm). */
  readonly authenticated: Middleware;
  readonly pull: Middleware;
  /** Pushing needs pull as well, as in Distribution: a client pushing a layer first checks whether it exists. */
  readonly push: Middleware;
  readonly delete: Middleware;
  readonly catalog: Middleware;
  /** Whether the request's token (if any) allows `action` on another repository, e.g. the source of a mount. */
  allows(ctx: Context, repository: string, action: string): boolean;
  /** After `catalog` let the request in: which repositories it may see listed (undefined: all). */
  catalogFilter(ctx: Context): Promise<((repository: string) => boolean) | undefined>;
}

/** Builds the route middlewares from one check that gets the access a request needs (undefined: just a valid token). */
export function accessGuard(
  check: (ctx: Context, needed: Access | undefined) => Promise<void>,
  allows: AccessGuard['allows'],
  catalogFilter: AccessGuard['catalogFilter'] = async () => undefined,
): AccessGuard {
  const requiring =
    (needed: (ctx: Context) => Access | undefined): Middleware =>
    async (ctx: Context, next: Next) => {
      await check(ctx, needed(ctx));
      await next();
    };
  const onRepository = (actions: string[]) => requiring((ctx) => repositoryAccess(ctx.params.name ?? '', actions));
  return {
    authenticated: requiring(() => undefined),
    pull: onRepository(['pull']),
    push: onRepository(['pull', 'push']),
    delete: onRepository(['delete']),
    catalog: requiring(() => CATALOG_ACCESS),
    allows,
    catalogFilter,
  };
}

export const OPEN_ACCESS: AccessGuard = accessGuard(
  async () => undefined,
  () => true,
);
