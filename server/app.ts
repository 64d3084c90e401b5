import Koa from 'koa';
import type { Logger } from 'pino';
import { errorMiddleware } from './http/error-middleware.js';
import { requestLog } from './http/request-log.js';
import type { RegistryServices } from './routes/context.js';
import { createRegistryRouter, unmatchedRequests } from './routes/index.js';

export function createApp(services: RegistryServices, logger: Logger): Koa {
  const app = new Koa();
  // Errors are rendered by errorMiddleware; Koa's own handler would only print them again.
  app.silent = true;
  const router = createRegistryRouter(services);
  app.use(requestLog(logger));
  app.use(async (ctx, next) => {
    ctx.set('Docker-Distribution-API-Version', 'registry/2.0');
    await next();
  });
  app.use(errorMiddleware);
  app.use(unmatchedRequests(router));
  app.use(router.routes());
  return app;
}
