import type Router from '@koa/router';
import type { Context } from 'koa';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { GarbageCollector } from '../gc/collector.js';
import type { GcOptions } from '../gc/gc-run.js';
import { LeaseLostError } from '../gc/lease.js';
import { createRouter } from '../http/router.js';

export interface GcAdminServices {
  collector: GarbageCollector;
  /** The configured collection; the request chooses only whether it is a dry run. */
  options: GcOptions;
}

/**
 * POST /admin/v1/gc[?dryRun=true]: runs a garbage collection now and answers its report (JSON), 409 when
 * another collector holds the lease, or 503 when this run lost the lease midway and stopped.
 */
export function gcAdminRouter({ collector, options }: GcAdminServices): Router {
  const router = createRouter();
  router.post('/admin/v1/gc', async (ctx: Context) => {
    const dryRun = ctx.query.dryRun === 'true' || ctx.query.dryRun === '1';
    const report = await collector.run({ ...options, dryRun }).catch((error: unknown) => {
      // Another collector may have taken over (after a failover that lost the lease): this run stopped safely.
      if (error instanceof LeaseLostError) {
        throw new CodedError(DistributionErrors.UNAVAILABLE, error.message, { headers: { 'Retry-After': '1' } });
      }
      throw error;
    });
    if (!report) throw new CodedError(DistributionErrors.BUSY, 'another garbage collection is running');
    ctx.body = report;
  });
  return router;
}
