import type { Context } from 'koa';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { chunkFromRequest, hasBody } from '../http/request-body.js';
import { emptyResponse } from '../http/responses.js';
import { eventOrigin } from '../http/request-context.js';
import type { UploadSession } from '../metadata/metadata-store.js';
import { parseDigest } from '../../oci/digest.js';
import { assertRepositoryName } from '../../oci/names.js';
import { uploadHeaders } from '../services/upload-service.js';
import type { RegistryRouter, RegistryServices } from './context.js';

export function registerUploadRoutes(router: RegistryRouter, { uploads, access }: RegistryServices): void {
  const start = async (ctx: Context) => {
    const name = ctx.params.name ?? '';
    const mountDigest = queryValue(ctx, 'mount');
    const from = queryValue(ctx, 'from');
    if (mountDigest !== undefined && from !== undefined) {
      const mounted = await tryMount(ctx, name, mountDigest, from);
      if (mounted) return;
    }
    const digest = queryValue(ctx, 'digest');
    if (digest !== undefined) {
      const stored = await uploads.uploadMonolithic(name, digest, chunkFromRequest(ctx), eventOrigin(ctx));
      blobCreated(ctx, name, stored);
      return;
    }
    uploadAccepted(ctx, await uploads.start(name, eventOrigin(ctx)));
  };

  // Mounting is best effort: a bad `from` or digest, a blob `from` cannot see, or a token without pull on
  // `from`, falls back to an upload.
  const tryMount = async (ctx: Context, name: string, mountDigest: string, from: string): Promise<boolean> => {
    let digest: string;
    try {
      assertRepositoryName(from);
      digest = parseDigest(mountDigest).value;
    } catch {
      return false;
    }
    if (!access.allows(ctx, from, 'pull') || (await uploads.mount(name, from, digest, eventOrigin(ctx))) === undefined) return false;
    blobCreated(ctx, name, digest);
    return true;
  };

  router.post('/v2/*name/blobs/uploads/', access.push, start);
  router.post('/v2/*name/blobs/uploads', access.push, start);

  router.patch('/v2/*name/blobs/uploads/:uploadId', access.push, async (ctx: Context) => {
    const name = ctx.params.name ?? '';
    const uploadId = ctx.params.uploadId ?? '';
    const session = await uploads.append(name, uploadId, chunkFromRequest(ctx));
    uploadAccepted(ctx, session);
  });

  router.put('/v2/*name/blobs/uploads/:uploadId', access.push, async (ctx: Context) => {
    const name = ctx.params.name ?? '';
    const uploadId = ctx.params.uploadId ?? '';
    const digest = queryValue(ctx, 'digest');
    if (digest === undefined)
      throw new CodedError(DistributionErrors.DIGEST_INVALID, 'the digest query parameter is required to finish an upload');
    const chunk = hasBody(ctx) ? chunkFromRequest(ctx) : undefined;
    blobCreated(ctx, name, await uploads.complete(name, uploadId, digest, chunk, eventOrigin(ctx)));
  });

  router.get('/v2/*name/blobs/uploads/:uploadId', access.push, async (ctx: Context) => {
    emptyResponse(ctx, 204, uploadHeaders(await uploads.status(ctx.params.name ?? '', ctx.params.uploadId ?? '')));
  });

  router.delete('/v2/*name/blobs/uploads/:uploadId', access.push, async (ctx: Context) => {
    await uploads.cancel(ctx.params.name ?? '', ctx.params.uploadId ?? '');
    emptyResponse(ctx, 204);
  });
}

function uploadAccepted(ctx: Context, session: UploadSession): void {
  emptyResponse(ctx, 202, uploadHeaders(session));
}

function blobCreated(ctx: Context, name: string, digest: string): void {
  emptyResponse(ctx, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
}

function queryValue(ctx: Context, key: string): string | undefined {
  const value = ctx.query[key];
  return Array.isArray(value) ? value[0] : value;
}
