import type { Context } from 'koa';
import type { RegistryRouter, RegistryServices } from './context.js';

export function registerBaseRoutes(router: RegistryRouter, { access }: RegistryServices): void {
  const versionCheck = (ctx: Context) => {
    ctx.body = {};
  };
  router.get('/v2/', access.authenticated, versionCheck);
  router.get('/v2', access.authenticated, versionCheck);
}
