import type { Context } from 'koa';
import { parseDigest } from '../../oci/digest.js';
import { resolveByteRange } from '../http/byte-range.js';
import { matchesIfNoneMatch } from '../http/conditional.js';
import { emptyResponse } from '../http/responses.js';
import { eventOrigin } from '../http/request-context.js';
import { sendFileRange } from '../http/send-file-range.js';
import { streamBody } from '../http/stream-body.js';
import type { RegistryRouter, RegistryServices } from './context.js';

export function registerBlobRoutes(router: RegistryRouter, { blobs, access }: RegistryServices): void {
  // Koa's router answers HEAD with the GET handler; HEAD never opens the blob.
  router.get('/v2/*name/blobs/:digest', access.pull, async (ctx: Context) => {
    const digest = parseDigest(ctx.params.digest ?? '').value;
    const size = await blobs.size(ctx.params.name ?? '', digest, eventOrigin(ctx));
    const etag = `"${digest}"`;
    ctx.set('Docker-Content-Digest', digest);
    ctx.set('ETag', etag);
    ctx.set('Accept-Ranges', 'bytes');
    // Content-addressed: the bytes behind a digest never change.
    ctx.set('Cache-Control', 'max-age=31536000');
    if (matchesIfNoneMatch(ctx.get('If-None-Match'), etag)) {
      ctx.status = 304;
      return;
    }
    // HEAD is answered from metadata alone; a GET may be sent to the store's own URL, which serves Range too.
    const redirect = ctx.method === 'GET' ? await blobs.redirectUrl(digest) : undefined;
    if (redirect) {
      ctx.status = 307;
      ctx.set('Location', redirect);
      // The URL expires; only the digest's bytes are immutable.
      ctx.set('Cache-Control', 'no-store');
      return;
    }
    const range = resolveByteRange(ctx.get('Range'), size);
    ctx.type = 'application/octet-stream';
    if (range) {
      ctx.status = 206;
      ctx.set('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
    } else {
      ctx.status = 200;
    }
    const length = range ? range.end - range.start + 1 : size;
    if (ctx.method === 'HEAD') {
      ctx.set('Content-Length', String(length));
      return;
    }
    const body = await blobs.open(digest, size, range);
    if (Buffer.isBuffer(body)) ctx.body = body;
    else if ('handle' in body) sendFileRange(ctx, body, length);
    else streamBody(ctx, body, length);
  });

  router.delete('/v2/*name/blobs/:digest', access.delete, async (ctx: Context) => {
    const digest = parseDigest(ctx.params.digest ?? '').value;
    await blobs.delete(ctx.params.name ?? '', digest, eventOrigin(ctx));
    emptyResponse(ctx, 202, { 'Docker-Content-Digest': digest });
  });
}
