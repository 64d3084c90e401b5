import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { createRouter } from '../http/router.js';
import { assertRepositoryName } from '../../oci/names.js';
import { registerBaseRoutes } from './base.js';
import { registerBlobRoutes } from './blobs.js';
import type { RegistryServices } from './context.js';
import { registerListingRoutes } from './listings.js';
import { registerManifestRoutes } from './manifests.js';
import { registerReferrerRoutes } from './referrers.js';
import { registerUploadRoutes } from './uploads.js';

/** The OCI Distribution API under /v2/. Order matters: upload routes precede `blobs/:digest`. */
export function createRegistryRouter(services: RegistryServices): Router {
  const router = createRouter();
  router.param('name', (name: string, _ctx: Context, next: Next) => {
    assertRepositoryName(name);
    return next();
  });
  registerBaseRoutes(router, services);
  registerListingRoutes(router, services);
  registerUploadRoutes(router, services);
  registerBlobRoutes(router, services);
  registerManifestRoutes(router, services);
  registerReferrerRoutes(router, services);
  return router;
}

/**
 * Turns requests no route handles into the spec's error format: unknown paths become 404 UNSUPPORTED, known
 * paths with another method 405 UNSUPPORTED with an Allow header. Install it outside the router.
 */
export function unmatchedRequests(router: Router) {
  const allowed = router.allowedMethods();
  return async (ctx: Context, next: Next): Promise<void> => {
    await allowed(ctx as Parameters<typeof allowed>[0], next);
    if (ctx.status === 405 || ctx.status === 501) {
      throw new CodedError(DistributionErrors.METHOD_NOT_ALLOWED, `${ctx.method} is not supported on ${ctx.path}`, {
        headers: { Allow: ctx.response.get('Allow') },
      });
    }
    if (ctx.status === 404 && ctx.body === undefined) {
      throw new CodedError(DistributionErrors.ENDPOINT_UNKNOWN, `no such endpoint: ${ctx.method} ${ctx.path}`);
    }
  };
}
