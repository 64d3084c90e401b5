import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type Router from '@koa/router';
import type { Redis } from 'ioredis';
import type { Context } from 'koa';
import type { BlobStore } from '../storage/blob-store.js';
import { createRouter } from '../http/router.js';

const REDIS_TIMEOUT_MS = 1_000;
// Probes come every second or so; the store is written at most this often (S3 calls cost money and time).
const STORE_CHECK_CACHE_MS = 5_000;

type Check = () => Promise<void>;

/**
 * GET /livez: the process serves HTTP. GET /readyz: Redis answers a PING and can persist writes, and the blob
 * store accepts a write, else 503 with the failing check, so a load balancer stops sending traffic to this
 * replica. `redisWriteProblem` tells why the embedded Redis refuses writes, if it does.
 */
export function healthRouter(redis: Redis, store: BlobStore, redisWriteProblem: () => string | undefined): Router {
  const checks: Record<string, Check> = {
    redis: () => checkRedis(redis, redisWriteProblem),
    storage: cached(() => probeStore(store), STORE_CHECK_CACHE_MS),
  };
  const router = createRouter();
  router.get('/livez', (ctx: Context) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx: Context) => {
    const results = await Promise.all(Object.entries(checks).map(async ([name, check]) => [name, await outcome(check)] as const));
    const failed = results.some(([, result]) => result !== 'ok');
    ctx.status = failed ? 503 : 200;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: failed ? 'unavailable' : 'ok', checks: Object.fromEntries(results) };
  });
  return router;
}

async function outcome(check: Check): Promise<string> {
  try {
    await check();
    return 'ok';
  } catch (error) {
    return (error as Error).message;
  }
}

async function checkRedis(redis: Redis, writeProblem: () => string | undefined): Promise<void> {
  await withTimeout(redis.ping());
  const problem = writeProblem();
  if (problem) throw new Error(problem);
  // A Redis whose AOF writes fail (and that does not exit over it) refuses writes with MISCONF.
  if (/aof_last_write_status:err/.test(await withTimeout(redis.info('persistence')))) {
    throw new Error('redis cannot write its append-only file (is its disk full?): writes are refused, reads still work');
  }
}

async function withTimeout<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('redis did not answer in time')), REDIS_TIMEOUT_MS);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Writes a few bytes through the store's upload path and discards them: works alike for every store kind. */
async function probeStore(store: BlobStore): Promise<void> {
  const id = `readyz-${randomUUID()}`;
  const storeState = await store.createUpload(id);
  let handle = { id, offset: 0, storeState };
  try {
    const written = await store.writeUpload(handle, Readable.from([Buffer.from('readyz')]));
    handle = { ...handle, storeState: written.storeState };
  } finally {
    await store.abortUpload(handle).catch(() => undefined);
  }
}

/** Reuses the last outcome (success or failure) of `check` for `ttlMs`. */
function cached(check: Check, ttlMs: number): Check {
  let last: { result: Promise<void>; at: number } | undefined;
  return () => {
    if (!last || Date.now() - last.at >= ttlMs) last = { result: check(), at: Date.now() };
    return last.result;
  };
}
