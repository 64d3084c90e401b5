import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Context } from 'koa';
import { bodyBuffers, written } from './send-file-range.js';

/**
 * Sends `source` as a body of exactly `length` bytes. Once the headers are out, a status can no longer tell
 * the client that something went wrong; a source that fails or ends short (a damaged file, a store that drops
 * the connection) therefore aborts the connection, so the client sees an error instead of waiting forever
 * for the bytes that Content-Length promised.
 *
 * The source's chunks (a fresh 64 KiB buffer per socket read of a proxied S3 body) are copied into two reused
 * buffers written in turn, as sendFileRange does for files: a chunk is garbage at once instead of living in
 * the socket's queue until it is written, and a busy socket gets fewer, larger writes. Bytes go out as soon as
 * the socket has taken the previous ones, so a slow source still streams.
 */
export function streamBody(ctx: Context, source: Readable, length: number): void {
  ctx.length = length;
  // Koa has set the status and headers on the response; the body is written here, not by Koa.
  ctx.respond = false;
  const response = ctx.res;
  copyBody(source, response, length).catch((error: NodeJS.ErrnoException) => {
    source.destroy();
    // A client that went away makes the body end early too; that is no fault of the store.
    if (!response.destroyed && error.code !== 'ERR_STREAM_PREMATURE_CLOSE') {
      ctx.state.logger?.error({ err: error }, 'response body failed; closing the connection');
    }
    response.destroy();
  });
}

async function copyBody(source: Readable, response: ServerResponse, length: number): Promise<void> {
  const buffers = bodyBuffers(length);
  const flushed: [Promise<void>, Promise<void>] = [Promise.resolve(), Promise.resolve()];
  const busy = [false, false];
  let turn = 0;
  let filled = 0;
  let sent = 0;
  const submit = () => {
    const index = turn;
    busy[index] = true;
    const idle = () => (busy[index] = false);
    flushed[index] = written(response, buffers[index]!.subarray(0, filled));
    void flushed[index].then(idle, idle);
    sent += filled;
    filled = 0;
    turn ^= 1;
  };
  for await (const chunk of source as AsyncIterable<Buffer>) {
    if (sent + filled + chunk.length > length) throw new Error(`body is longer than its ${length} bytes`);
    for (let position = 0; position < chunk.length;) {
      // Never overwrite bytes still on their way to the socket.
      if (filled === 0) await flushed[turn];
      if (response.destroyed) return;
      const copied = chunk.copy(buffers[turn]!, filled, position);
      position += copied;
      filled += copied;
      if (filled === buffers[turn]!.length) submit();
    }
    if (filled > 0 && !busy[turn ^ 1]) submit();
  }
  if (sent + filled !== length) throw new Error(`body ended after ${sent + filled} of ${length} bytes`);
  if (filled > 0) submit();
  await Promise.all(flushed);
  await new Promise<void>((resolve) => response.end(resolve));
}
