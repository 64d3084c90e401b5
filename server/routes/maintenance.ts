import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import { readJsonBody } from '../auth/small-body.js';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { createRouter } from '../http/router.js';
import type { MaintenanceMode } from '../maintenance/read-only.js';

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Refuses writes while read-only, with Distribution's answer to the same situation: 405 UNSUPPORTED and a
 * message saying why. Docker prints the message and does not retry, as it would after a 5xx. It guards the
 * routes it is mounted in front of (the /v2/ router's, see app.ts), so it looks at the method alone.
 */
export function refuseWritesWhenReadOnly(mode: MaintenanceMode) {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (WRITE_METHODS.has(ctx.method) && (await mode.readOnly())) {
      throw new CodedError(
        DistributionErrors.READ_ONLY,
        'the registry is in read-only mode for maintenance; pulls still work, retry writes later',
      );
    }
    await next();
  };
}

/** GET and PUT /admin/v1/maintenance ({"readOnly": true|false}). */
export function maintenanceAdminRouter(mode: MaintenanceMode): Router {
  const router = createRouter();
  router.get('/admin/v1/maintenance', async (ctx: Context) => {
    ctx.body = await mode.status();
  });
  router.put('/admin/v1/maintenance', async (ctx: Context) => {
    const body = await readJsonBody(ctx);
    if (typeof body.readOnly !== 'boolean') throw new CodedError(DistributionErrors.UNSUPPORTED, 'readOnly must be true or false');
    await mode.switchTo(body.readOnly);
    ctx.body = await mode.status();
  });
  return router;
}
