import type { Context } from 'koa';

// How long the rest of an unread body may keep arriving after the answer before the connection is cut.
const LINGER_MS = 10_000;

// Content Too Large: a body refused for its size is not worth reading to its end.
const BODY_TOO_LARGE_STATUS = 413;

/**
 * For a request answered (with `status`) before its body was read: a body refused as too large closes the
 * connection with the answer; any other is drained (below).
 */
export function settleUnreadBody(ctx: Context, status: number): void {
  if (status === BODY_TOO_LARGE_STATUS) ctx.set('Connection', 'close');
  else drainUnreadBody(ctx);
}

/**
 * For a request answered before its body was read (a rejected or failed upload): the rest of the body is read
 * and discarded, so the client can finish sending and then read the answer. Closing the connection at once
 * would make the kernel reset it over the unread bytes, and the reset can destroy the answer before the
 * client has read it. A body still arriving LINGER_MS after the answer has its connection cut.
 */
function drainUnreadBody(ctx: Context): void {
  const { req, res } = ctx;
  req.resume();
  res.once('finish', () => {
    if (req.complete) return;
    const timer = setTimeout(() => req.socket.destroy(), LINGER_MS).unref();
    const stop = () => clearTimeout(timer);
    req.once('end', stop).once('close', stop);
  });
}
