import type { Context } from 'koa';
import { MediaType } from '../../oci/media-types.js';
import type { RegistryRouter, RegistryServices } from './context.js';

export function registerReferrerRoutes(router: RegistryRouter, { manifests, access }: RegistryServices): void {
  router.get('/v2/*name/referrers/:digest', access.pull, async (ctx: Context) => {
    const artifactTypeParam = ctx.query.artifactType;
    const artifactType = Array.isArray(artifactTypeParam) ? artifactTypeParam[0] : artifactTypeParam;
    const { manifests: descriptors } = await manifests.referrers(ctx.params.name ?? '', ctx.params.digest ?? '', artifactType || undefined);
    if (artifactType) ctx.set('OCI-Filters-Applied', 'artifactType');
    ctx.body = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: descriptors };
    ctx.type = MediaType.ociIndex;
  });
}
