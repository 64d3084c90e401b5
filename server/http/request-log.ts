import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../../platform/logger.js';
import { requestUser } from './request-context.js';
import { afterResponse } from './request-end.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Gives every request an id (the caller's X-Request-Id if sane) and logs one line when the response has
 * been sent completely or the connection closed, so streamed blobs are timed to their last byte. A request
 * whose client went away is logged with status 499.
 *
 * The request line is written without the logger's redaction pass: its fields are picked here and none can
 * hold a credential (the path has no query string, the user is an account name), and that pass was two
 * thirds of the line's cost, a tenth of the CPU of a manifest or small blob GET. `ctx.state.logger` (with
 * redaction, for whatever else a request logs) is made when first used: most requests never use it.
 */
export function requestLog(logger: Logger) {
  const lines = logger.child({}, { redact: [] });
  return async (ctx: Context, next: Next): Promise<void> => {
    const incoming = ctx.get('X-Request-Id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const started = process.hrtime.bigint();
    ctx.state.requestId = requestId;
    let requestLogger: Logger | undefined;
    Object.defineProperty(ctx.state, 'logger', { get: () => (requestLogger ??= logger.child({ requestId })), configurable: true });
    ctx.set('X-Request-Id', requestId);
    await afterResponse(ctx, next, (closedAt) => {
      const durationMs = Number(closedAt - started) / 1e6;
      lines.info(
        {
          requestId,
          method: ctx.method,
          path: ctx.path,
          route: ctx._matchedRoute,
          repository: ctx.params?.name,
          user: requestUser(ctx),
          status: ctx.status,
          completed: ctx.res.writableFinished,
          bytesIn: Number(ctx.get('Content-Length')) || undefined,
          bytesOut: ctx.response.length,
          durationMs: Math.round(durationMs * 10) / 10,
        },
        'request',
      );
    });
  };
}
