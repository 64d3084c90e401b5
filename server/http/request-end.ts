import type { Context, Next } from 'koa';

/**
 * Runs `next` and calls `ended` once the request has been handled and its response sent or abandoned, with
 * the time the connection closed. The order matters when a client aborts: its connection closes first, and
 * only then does the handler reading the body fail and the error middleware set the status to report.
 */
export async function afterResponse(ctx: Context, next: Next, ended: (closedAt: bigint) => void): Promise<void> {
  const closed = responseClosed(ctx);
  try {
    await next();
  } finally {
    void closed.then(ended);
  }
}

// The request log and the metrics both wait for the close: one listener per request serves them both.
function responseClosed(ctx: Context): Promise<bigint> {
  const state = ctx.state as { responseClosed?: Promise<bigint> };
  state.responseClosed ??= new Promise<bigint>((resolve) => ctx.res.once('close', () => resolve(process.hrtime.bigint())));
  return state.responseClosed;
}
