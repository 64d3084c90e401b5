import type { Context } from 'koa';
import { readBoundedBody } from '../../platform/body.js';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { ChunkRequest } from '../services/upload-service.js';

const CONTENT_RANGE = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/;

/** The declared Content-Length, or undefined when absent (chunked transfer encoding). */
export function declaredLength(ctx: Context): number | undefined {
  const header = ctx.get('Content-Length');
  if (header === '') return undefined;
  if (!/^\d+$/.test(header)) throw new CodedError(DistributionErrors.SIZE_INVALID, 'invalid Content-Length header');
  return Number(header);
}

export function hasBody(ctx: Context): boolean {
  const length = declaredLength(ctx);
  return length === undefined ? ctx.get('Transfer-Encoding') !== '' : length > 0;
}

/**
 * The request body as an upload chunk, with its Content-Range. The spec writes upload ranges as
 * `<start>-<end>`; `bytes <start>-<end>/<total>` as some clients send it is accepted too.
 */
export function chunkFromRequest(ctx: Context): ChunkRequest {
  const header = ctx.get('Content-Range');
  const length = declaredLength(ctx);
  if (header === '') return { source: ctx.req, length };
  const match = CONTENT_RANGE.exec(header.trim());
  return { source: ctx.req, length, range: match ? { start: Number(match[1]), end: Number(match[2]) } : 'invalid' };
}

/**
 * Reads a manifest whole, refusing it as soon as it passes `limit` bytes (before reading, when its declared
 * length already does). A body that ends early is an invalid manifest, as Distribution answers it.
 */
export async function readLimitedBody(ctx: Context, limit: number): Promise<Buffer> {
  try {
    return await readBoundedBody(ctx.req, { limit, declaredLength: declaredLength(ctx) });
  } catch (error) {
    if (error instanceof CodedError && error.errorCode === DistributionErrors.BODY_INCOMPLETE) {
      throw new CodedError(DistributionErrors.MANIFEST_INVALID, `manifest body ended early: ${error.message}`);
    }
    throw error;
  }
}
