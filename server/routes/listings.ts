import type { Context } from 'koa';
import { parsePage, setNextLink } from '../http/pagination.js';
import type { RegistryRouter, RegistryServices } from './context.js';

export function registerListingRoutes(router: RegistryRouter, { listings, config, access }: RegistryServices): void {
  router.get('/v2/_catalog', access.catalog, async (ctx: Context) => {
    const page = parsePage(ctx, config.limits.maxPageSize);
    const result = await listings.repositories(page, await access.catalogFilter(ctx));
    setNextLink(ctx, page, result);
    ctx.body = { repositories: result.items };
  });

  router.get('/v2/*name/tags/list', access.pull, async (ctx: Context) => {
    const name = ctx.params.name ?? '';
    const page = parsePage(ctx, config.limits.maxPageSize);
    const result = await listings.tags(name, page);
    setNextLink(ctx, page, result);
    ctx.body = { name, tags: result.items };
  });
}
