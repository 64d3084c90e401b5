import type Router from '@koa/router';
import type { Context } from 'koa';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { GarbageCollector } from '../gc/collector.js';
import type { GcOptions } from '../gc/gc-run.js';
import { createRouter } from '../http/router.js';

export interface GcAdminServices {
  collector: GarbageCollector;
  /** The configured collection; the request chooses only whether it is a dry run. */
  options: GcOptions;
}

/**
 * POST /admin/v1/gc[?dryRun=true]: runs a garbage collection now and answers its report (JSON), or
 * 409 when another collector holds the lease.
 */
export function gcAdminRouter({ collector, options }: GcAdminServices): Router {
  const router = createRouter();
  router.post('/admin/v1/gc', async (ctx: Context) => {
    const dryRun = ctx.query.dryRun === 'true' || ctx.query.dryRun === '1';
    const report = await collector.run({ ...options, dryRun });
    if (!report) throw new CodedError(DistributionErrors.BUSY, 'another garbage collection is running');
    ctx.body = report;
  });
  return router;
}
