import type { RegistryRouter } from './context.js';

export function registerBaseRoutes(router: RegistryRouter): void {
  const versionCheck = (ctx: import('koa').Context) => {
    ctx.body = {};
  };
  router.get('/v2/', versionCheck);
  router.get('/v2', versionCheck);
}
