import type Router from '@koa/router';
import type { Redis } from 'ioredis';
import type { Context, Next } from 'koa';
import { readJsonBody } from '../auth/small-body.js';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { createRouter } from '../http/router.js';

// Replicas see a switch made through the admin API within this long; a write costs no Redis read meanwhile.
const CACHE_MS = 1_000;
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Read-only maintenance mode: on when the config says so (`maintenance.readOnly`) or when switched on through
 * the admin API, which stores the switch in Redis so every replica follows it.
 */
export class MaintenanceMode {
  private cached: { readOnly: boolean; until: number } | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly forcedByConfig: boolean,
  ) {}

  async readOnly(): Promise<boolean> {
    if (this.forcedByConfig) return true;
    if (this.cached && this.cached.until > Date.now()) return this.cached.readOnly;
    const readOnly = (await this.redis.get(this.key)) === '1';
    this.cached = { readOnly, until: Date.now() + CACHE_MS };
    return readOnly;
  }

  async switchTo(readOnly: boolean): Promise<void> {
    await (readOnly ? this.redis.set(this.key, '1') : this.redis.del(this.key));
    this.cached = undefined;
  }

  async status(): Promise<{ readOnly: boolean; forcedByConfig: boolean }> {
    return { readOnly: await this.readOnly(), forcedByConfig: this.forcedByConfig };
  }
}

/**
 * Refuses writes while read-only, with Distribution's answer to the same situation: 405 UNSUPPORTED and a
 * message saying why. Docker prints the message and does not retry, as it would after a 5xx. It guards the
 * routes it is mounted in front of (the /v2/ router's, see app.ts), so it looks at the method alone.
 */
export function refuseWritesWhenReadOnly(mode: MaintenanceMode) {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (WRITE_METHODS.has(ctx.method) && (await mode.readOnly())) {
      throw new CodedError(DistributionErrors.READ_ONLY, 'the registry is in read-only mode for maintenance; pulls still work, retry writes later');
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
