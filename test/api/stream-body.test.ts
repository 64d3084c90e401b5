import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import test from 'ava';
import Koa from 'koa';
import { streamBody } from '../../server/http/stream-body.js';

// streamBody on a real HTTP server, as a proxied S3 pull uses it: a source delivered in 64 KiB pieces, as a
// socket read hands them over, answered with exactly the promised length or an aborted connection.
const KiB = 1024;
const MiB = 1024 * KiB;

/** `bytes` in 64 KiB pieces, every 16th one after a pause (a slow store); `fail` ends it with an error instead of its last piece. */
function pieces(bytes: Buffer, fail = false): Readable {
  let position = 0;
  let count = 0;
  return new Readable({
    read() {
      if (position >= bytes.length) return void this.push(null);
      const piece = bytes.subarray(position, position + 64 * KiB);
      position += piece.length;
      if (fail && position >= bytes.length) return void this.destroy(new Error('the store dropped the connection'));
      count += 1;
      if (count % 16 === 0) setTimeout(() => this.push(piece), 20);
      else this.push(piece);
    },
  });
}

/** Serves one response: `source` as a body promised to be `length` bytes. */
async function serve(source: Readable, length: number): Promise<{ url: string; close: () => void }> {
  const app = new Koa();
  app.use((ctx) => {
    ctx.status = 200;
    streamBody(ctx, source, length);
  });
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** The bytes received, or the error that ended the response. */
function download(url: string): Promise<{ status: number; bytes: Buffer } | { error: string }> {
  return new Promise((resolve) => {
    http
      .get(url, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes: Buffer.concat(parts) }));
        res.on('error', (error) => resolve({ error: error.message }));
      })
      .on('error', (error) => resolve({ error: error.message }));
  });
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

test('a body of the promised length arrives byte-identical, also from a source that pauses', async (t) => {
  const bytes = randomBytes(5 * MiB + 123);
  const server = await serve(pieces(bytes), bytes.length);
  t.teardown(server.close);
  const answer = await download(server.url);
  if (!('bytes' in answer)) return t.fail(answer.error);
  t.is(answer.status, 200);
  t.is(answer.bytes.length, bytes.length);
  t.is(sha256(answer.bytes), sha256(bytes));
});

test('a source that ends short of the promised length aborts the connection', async (t) => {
  const bytes = randomBytes(3 * MiB);
  const server = await serve(pieces(bytes), bytes.length + 1);
  t.teardown(server.close);
  t.true('error' in (await download(server.url)));
});

test('a source longer than the promised length aborts the connection', async (t) => {
  const bytes = randomBytes(3 * MiB);
  const server = await serve(pieces(bytes), bytes.length - 1);
  t.teardown(server.close);
  t.true('error' in (await download(server.url)));
});

test('a source that fails mid-way aborts the connection', async (t) => {
  const bytes = randomBytes(3 * MiB);
  const server = await serve(pieces(bytes, true), bytes.length);
  t.teardown(server.close);
  t.true('error' in (await download(server.url)));
});
