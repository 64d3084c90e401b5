import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import type { BlobStore } from '../storage/blob-store.js';

const REDIS_TIMEOUT_MS = 1_000;
// Probes come every second or so; the store is written at most this often (S3 calls cost money and time).
const STORE_CHECK_CACHE_MS = 5_000;

type Check = () => Promise<void>;

/**
 * Readiness: Redis answers a PING, is the primary and can persist writes, and the blob store accepts a
 * write. A lost primary (no answer within the timeout while Sentinel fails over) is reported as such.
 */
export interface ReadinessReport {
  ready: boolean;
  /** Per check, 'ok' or why it failed. */
  checks: Record<string, string>;
}

/**
 * The checks behind GET /readyz (routes/health.ts), so a load balancer stops sending traffic to a replica
 * that cannot serve. `redisWriteProblem` tells why the embedded Redis refuses writes, if it does.
 */
export class ReadinessChecks {
  private readonly checks: Record<string, Check>;

  constructor(redis: Redis, store: BlobStore, redisWriteProblem: () => string | undefined) {
    this.checks = {
      redis: () => checkRedis(redis, redisWriteProblem),
      storage: cached(() => probeStore(store), STORE_CHECK_CACHE_MS),
    };
  }

  async run(): Promise<ReadinessReport> {
    const results = await Promise.all(Object.entries(this.checks).map(async ([name, check]) => [name, await outcome(check)] as const));
    return { ready: results.every(([, result]) => result === 'ok'), checks: Object.fromEntries(results) };
  }
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
  const [persistence, replication] = await withTimeout(Promise.all([redis.info('persistence'), redis.info('replication')]));
  // A Redis whose AOF writes fail (and that does not exit over it) refuses writes with MISCONF.
  if (/aof_last_write_status:err/.test(persistence)) {
    throw new Error('redis cannot write its append-only file (is its disk full?): writes are refused, reads still work');
  }
  // A primary demoted by a failover, or a redis.url pointing at a replica: every write would be refused.
  if (!/^role:master\r?$/m.test(replication)) {
    throw new Error('redis is a replica, not the primary: writes are refused until the client reaches the primary');
  }
}

async function withTimeout<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('redis did not answer in time (its primary is lost or failing over)')), REDIS_TIMEOUT_MS);
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
    const written = await store.writeUpload(handle, Readable.from([Buffer.from('readyz')]), () => undefined);
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
