import type { Context } from 'koa';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { declaredLength } from '../http/request-body.js';

// Token requests and admin calls are a few hundred bytes; anything far larger is not one of them.
const LIMIT_BYTES = 64 * 1024;

const FORM_TYPE = 'application/x-www-form-urlencoded';

/**
 * Reads a small body whole. A declared length over the limit is refused before a byte is read; a chunked
 * body is read only up to the limit and then left unread (the error middleware closes the connection after
 * the 413), so the answer still reaches the client.
 */
export async function readSmallBody(ctx: Context): Promise<string> {
  const length = declaredLength(ctx);
  if (length !== undefined && length > LIMIT_BYTES) throw tooLarge();
  return new Promise<string>((resolve, reject) => {
    const parts: Buffer[] = [];
    let total = 0;
    const settle = (outcome: () => void) => {
      ctx.req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      ctx.req.pause();
      outcome();
    };
    const onData = (part: Buffer) => {
      total += part.length;
      if (total <= LIMIT_BYTES) parts.push(part);
      else settle(() => reject(tooLarge()));
    };
    const onEnd = () => settle(() => resolve(Buffer.concat(parts, total).toString('utf8')));
    const onError = (error: Error) => settle(() => reject(error));
    // A client that goes away mid-body: Node destroys the request, with or without an 'error'.
    const onClose = () => settle(() => reject(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
    ctx.req.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose);
  });
}

function tooLarge(): CodedError {
  return new CodedError(DistributionErrors.BODY_TOO_LARGE, `request body exceeds ${LIMIT_BYTES} bytes`);
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
