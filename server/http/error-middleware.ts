import type { Context, Next } from 'koa';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { settleUnreadBody } from './linger.js';
import { redisFailure } from '../redis/redis-errors.js';
import { storageFailure } from '../storage/storage-errors.js';

// nginx's status for a request its client closed before the answer: no answer is sent, the log says why.
export const CLIENT_CLOSED_REQUEST = 499;

/**
 * Renders every failure as the spec's JSON error body. Only genuine faults become a 5xx. A client that went
 * away mid-request is nobody's fault here: it is logged (by the request log) at info with status 499.
 */
export async function errorMiddleware(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (caught) {
    if (isClientAbort(ctx, caught)) {
      ctx.status = CLIENT_CLOSED_REQUEST;
      return;
    }
    const error = toCodedError(caught);
    if (error.status >= 500) ctx.state.logger?.error({ err: caught }, 'request failed');
    if (!ctx.headerSent && ctx.writable) {
      ctx.status = error.status;
      for (const [name, value] of Object.entries(error.headers)) ctx.set(name, value);
      ctx.body = error.toJSON();
    }
    if (!ctx.req.complete) settleUnreadBody(ctx, error.status);
  }
}

function toCodedError(caught: unknown): CodedError {
  if (caught instanceof CodedError) return caught;
  const storage = storageFailure(caught);
  if (storage) return storage;
  const redis = redisFailure(caught);
  if (redis) return redis;
  return new CodedError(DistributionErrors.UNKNOWN, 'internal error');
}

/**
 * Node's error for a request body whose connection closed before the body ended (not, say, a reset from S3),
 * thrown as is or as the cause of a body reader's error.
 */
function isClientAbort(ctx: Context, error: unknown): boolean {
  const codes = [error, (error as Error | undefined)?.cause].map((candidate) => (candidate as NodeJS.ErrnoException | undefined)?.code);
  const aborted = codes.some((code) => code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE');
  return aborted && ctx.req.destroyed && !ctx.req.complete;
}
