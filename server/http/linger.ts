import type { Socket } from 'node:net';
import type { Context } from 'koa';

// How long the rest of an unread body may keep arriving after the answer before the connection is cut.
const LINGER_MS = 10_000;

// How long a connection closed after a 413 waits for more of the refused body before it is cut (nginx: 5 s).
const CLOSE_IDLE_MS = 2_000;

// Content Too Large: a body refused for its size is not worth reading to its end.
const BODY_TOO_LARGE_STATUS = 413;

/**
 * For a request answered (with `status`) before its body was read: a body refused as too large closes the
 * connection with the answer (a lingering close, below); any other is drained.
 */
export function settleUnreadBody(ctx: Context, status: number): void {
  if (status === BODY_TOO_LARGE_STATUS) closeAfterAnswer(ctx);
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

/**
 * Answers with `Connection: close`, then closes as nginx's lingering close does: the answer and a FIN go out,
 * the body still in flight is read and discarded, and the socket is destroyed when the client closes, when it
 * has sent nothing for CLOSE_IDLE_MS, or after LINGER_MS in all. Node would destroy the socket as soon as its
 * FIN is sent; with refused bytes still unread that close is a reset, which can wipe the answer from the
 * client's receive buffer before the client reads it.
 */
function closeAfterAnswer(ctx: Context): void {
  const { req, res } = ctx;
  // The response's: a request destroyed by a reader that gave up on its body no longer names its socket.
  const { socket } = res;
  ctx.set('Connection', 'close');
  req.resume();
  // Node's own 'finish' handler (registered when the response was made) runs first and schedules the destroy.
  if (socket) res.once('finish', () => lingerBeforeDestroy(socket));
}

function lingerBeforeDestroy(socket: Socket): void {
  if (socket.destroyed) return;
  socket.removeListener('finish', socket.destroy);
  const destroy = () => socket.destroy();
  const cap = setTimeout(destroy, LINGER_MS).unref();
  socket.setTimeout(CLOSE_IDLE_MS, destroy);
  socket.once('close', () => clearTimeout(cap));
  socket.once('end', destroy);
}
