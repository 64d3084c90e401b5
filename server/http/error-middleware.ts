import type { Context, Next } from 'koa';
import { RegistryError } from '../errors.js';
import { drainUnreadBody } from './linger.js';
import { isWriteRefused } from '../metadata/redis-metadata-store.js';
import { storageFailure } from '../storage/storage-errors.js';

/** Renders every failure as the spec's JSON error body. Only genuine faults become a 5xx. */
export async function errorMiddleware(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (caught) {
    const error = toRegistryError(caught);
    if (error.status >= 500) ctx.state.logger?.error({ err: caught }, 'request failed');
    if (!ctx.headerSent && ctx.writable) {
      ctx.status = error.status;
      for (const [name, value] of Object.entries(error.headers)) ctx.set(name, value);
      ctx.body = error.toJSON();
    }
    if (!ctx.req.complete) drainUnreadBody(ctx);
  }
}

function toRegistryError(caught: unknown): RegistryError {
  if (caught instanceof RegistryError) return caught;
  const storage = storageFailure(caught);
  if (storage) return storage;
  if (isWriteRefused(caught)) {
    return new RegistryError('UNAVAILABLE', 503, 'the metadata store cannot persist writes (is its disk full?); pulls still work, retry the push later', {
      headers: { 'Retry-After': '10' },
    });
  }
  if (isRedisUnavailable(caught)) {
    return new RegistryError('UNAVAILABLE', 503, 'metadata store unavailable, retry shortly', { headers: { 'Retry-After': '1' } });
  }
  return new RegistryError('UNKNOWN', 500, 'internal error');
}

function isRedisUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (
    error.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|ECONNREFUSED|LOADING|Stream isn't writeable/.test(error.message)
  );
}
