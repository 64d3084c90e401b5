import type { Context } from 'koa';
import { readBoundedBody } from '../../platform/body.js';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { declaredLength } from '../http/request-body.js';

// Token requests and admin calls are a few hundred bytes; anything far larger is not one of them.
const LIMIT_BYTES = 64 * 1024;

const FORM_TYPE = 'application/x-www-form-urlencoded';

/**
 * Reads a small body whole. A declared length over the limit is refused before a byte is read; a chunked
 * body is read only up to the limit and then left unread, not destroyed (the error middleware drains it
 * after the 413), so the answer still reaches the client.
 */
async function readSmallBody(ctx: Context): Promise<string> {
  // Created when the reading starts: an iterator made earlier would already be listening on a body refused unread.
  const source: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => ctx.req.iterator({ destroyOnReturn: false }) };
  return (await readBoundedBody(source, { limit: LIMIT_BYTES, declaredLength: declaredLength(ctx) })).toString('utf8');
}

export async function readJsonBody(ctx: Context): Promise<Record<string, unknown>> {
  const text = await readSmallBody(ctx);
  try {
    const parsed: unknown = JSON.parse(text || '{}');
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // Reported below, as for any other non-object.
  }
  throw new CodedError(DistributionErrors.UNSUPPORTED, 'the request body must be a JSON object');
}

/** An OAuth2 form (POST /token). Anything else is refused by its Content-Type, unread. */
export async function readFormBody(ctx: Context): Promise<URLSearchParams> {
  if (!ctx.is(FORM_TYPE)) throw new CodedError(DistributionErrors.UNSUPPORTED_MEDIA_TYPE, `the request body must be ${FORM_TYPE}`);
  return new URLSearchParams(await readSmallBody(ctx));
}
