import { Transform, pipeline, type Readable } from 'node:stream';
import type { Context } from 'koa';

/**
 * Sends `source` as a body of exactly `length` bytes. Once the headers are out, a status can no longer tell
 * the client that something went wrong; a source that fails or ends short (a damaged file, a store that drops
 * the connection) therefore aborts the connection, so the client sees an error instead of waiting forever
 * for the bytes that Content-Length promised.
 */
export function streamBody(ctx: Context, source: Readable, length: number): void {
  let sent = 0;
  const exactLength = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sent += chunk.length;
      callback(sent > length ? new Error(`body is longer than its ${length} bytes`) : null, chunk);
    },
    flush(callback) {
      callback(sent === length ? null : new Error(`body ended after ${sent} of ${length} bytes`));
    },
  });
  const body = pipeline(source, exactLength, (error) => {
    // A client that went away makes the body end early too; that is no fault of the store.
    if (!error || (error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    ctx.state.logger?.error({ err: error }, 'response body failed; closing the connection');
    ctx.res.destroy();
  });
  ctx.body = body;
  ctx.length = length;
}
