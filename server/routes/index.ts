import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { RegistryError } from '../errors.js';
import { assertRepositoryName } from '../oci/names.js';
import { registerBaseRoutes } from './base.js';
import { registerBlobRoutes } from './blobs.js';
import type { RegistryServices } from './context.js';
import { registerListingRoutes } from './listings.js';
import { registerManifestRoutes } from './manifests.js';
import { registerReferrerRoutes } from './referrers.js';
import { registerUploadRoutes } from './uploads.js';

/** The OCI Distribution API under /v2/. Order matters: upload routes precede `blobs/:digest`. */
export function createRegistryRouter(services: RegistryServices): Router {
  const router = new Router();
  router.param('name', (name: string, ctx: Context, next: Next) => {
    assertRepositoryName(name);
    return next();
  });
  registerBaseRoutes(router);
  registerListingRoutes(router, services);
  registerUploadRoutes(router, services);
  registerBlobRoutes(router, services);
  registerManifestRoutes(router, services);
  registerReferrerRoutes(router, services);
  return router;
}

/** Answers paths no route knows, and known paths with an unsupported method, in the spec's error format. */
export function allowedMethods(router: Router) {
  return router.allowedMethods({
    throw: true,
    notImplemented: () => new RegistryError('UNSUPPORTED', 405, 'method not supported'),
    methodNotAllowed: () => new RegistryError('UNSUPPORTED', 405, 'method not allowed on this resource'),
  });
}

export async function notFound(ctx: Context): Promise<void> {
  if (ctx.status === 404 && ctx.body === undefined) {
    throw new RegistryError('UNSUPPORTED', 404, `no such endpoint: ${ctx.method} ${ctx.path}`);
  }
}
