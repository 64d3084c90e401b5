import type { Context } from 'koa';
import { matchesIfNoneMatch } from '../http/conditional.js';
import { readLimitedBody } from '../http/request-body.js';
import { emptyResponse } from '../http/responses.js';
import { eventOrigin } from '../http/request-context.js';
import { baseMediaType } from '../../oci/media-types.js';
import { parseReadReference, parseReference } from '../services/manifest-service.js';
import type { RegistryRouter, RegistryServices } from './context.js';

export function registerManifestRoutes(router: RegistryRouter, { manifests, config, access }: RegistryServices): void {
  router.get('/v2/*name/manifests/:reference', access.pull, async (ctx: Context) => {
    const reference = parseReadReference(ctx.params.reference ?? '');
    const manifest = await manifests.get(ctx.params.name ?? '', reference, acceptedTypes(ctx), eventOrigin(ctx));
    ctx.set('Docker-Content-Digest', manifest.digest);
    const etag = `"${manifest.digest}"`;
    ctx.set('ETag', etag);
    if (matchesIfNoneMatch(ctx.get('If-None-Match'), etag)) {
      ctx.status = 304;
      return;
    }
    ctx.type = manifest.mediaType;
    ctx.status = 200;
    if (ctx.method === 'HEAD') {
      ctx.set('Content-Length', String(manifest.content.length));
      return;
    }
    ctx.body = manifest.content;
  });

  router.put('/v2/*name/manifests/:reference', access.push, async (ctx: Context) => {
    const name = ctx.params.name ?? '';
    const reference = parseReference(ctx.params.reference ?? '');
    const body = await readLimitedBody(ctx, config.limits.manifestMaxBytes);
    const outcome = await manifests.put(name, reference, ctx.get('Content-Type') || undefined, body, eventOrigin(ctx));
    const headers: Record<string, string> = {
      Location: `/v2/${name}/manifests/${outcome.digest}`,
      'Docker-Content-Digest': outcome.digest,
    };
    if (outcome.subject) headers['OCI-Subject'] = outcome.subject;
    emptyResponse(ctx, 201, headers);
  });

  router.delete('/v2/*name/manifests/:reference', access.delete, async (ctx: Context) => {
    await manifests.delete(ctx.params.name ?? '', parseReference(ctx.params.reference ?? ''), eventOrigin(ctx));
    emptyResponse(ctx, 202);
  });
}

/** The media types named in the Accept header(s), without parameters; q=0 entries are refusals. */
function acceptedTypes(ctx: Context): string[] {
  const header = ctx.req.headers.accept;
  const values = Array.isArray(header) ? header : header ? [header] : [];
  return values
    .flatMap((value) => value.split(','))
    .filter((entry) => !/;\s*q=0(?:\.0*)?\s*(?:;|$)/.test(entry))
    .map((entry) => baseMediaType(entry))
    .filter((entry): entry is string => entry !== undefined);
}
