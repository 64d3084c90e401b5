import type { Context } from 'koa';
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

/** Reads a small body (a manifest) whole, refusing it as soon as it passes `limit` bytes. */
export async function readLimitedBody(ctx: Context, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new CodedError(DistributionErrors.BODY_TOO_LARGE, `manifest exceeds the size limit of ${limit} bytes`, { detail: { limit } });
  const length = declaredLength(ctx);
  if (length !== undefined && length > limit) throw tooLarge();
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const part of ctx.req as AsyncIterable<Buffer>) {
      total += part.length;
      if (total > limit) throw tooLarge();
      parts.push(part);
    }
  } catch (error) {
    if (error instanceof CodedError) throw error;
    throw new CodedError(DistributionErrors.MANIFEST_INVALID, 'request body ended early');
  }
  if (length !== undefined && total !== length) {
    throw new CodedError(DistributionErrors.SIZE_INVALID, `received ${total} bytes but Content-Length declared ${length}`);
  }
  return Buffer.concat(parts, total);
}
