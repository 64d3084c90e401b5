import { ApiPath, loginRequestSchema, pullRequestSchema, type ImageSummary, type PullEvent } from '../api.js';
import type { GarbageCollector } from '../image/garbage-collector.js';
import type { ImagePuller } from '../image/image-puller.js';
import { matchingImages } from '../image/image-lookup.js';
import { removeImage } from '../image/image-removal.js';
import type { ImageRecord, ImageStore } from '../image/image-store.js';
import { DEFAULT_REGISTRY, familiarName, parseReference } from '../../oci/reference.js';
import type { CredentialStore } from '../registry/credential-store.js';
import { RegistryError } from '../registry/registry-error.js';
import type { Credentials } from '../registry/registry-auth.js';
import type { RegistryClient } from '../registry/registry-client.js';
import { CodedError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { AgentErrors } from '../errors.js';
import type { ImageEvents } from '../events/image-events.js';
import { ndjson, readRequest, route, sendJson, type Route } from './http-api.js';

export interface ImageServices {
  puller: ImagePuller;
  images: ImageStore;
  collector: GarbageCollector;
  registryClient: (registry: string, credentials: Credentials | undefined) => RegistryClient;
  credentials: CredentialStore;
  /** A container created from this image id, if any: its last reference cannot be removed. */
  containerUsing: (imageId: string) => string | undefined;
  imageEvents: ImageEvents;
  logger: Logger;
}

export function imageRoutes(services: ImageServices): Route[] {
  return [
    route('GET', ApiPath.ping, async ({ response }) => sendJson(response, 200, { ok: true })),
    route('GET', ApiPath.images, async ({ response }) =>
      sendJson(response, 200, (await services.images.list()).map(summarize).sort(newestFirst)),
    ),
    route('DELETE', ApiPath.images, async ({ response, url }) => {
      const reference = url.searchParams.get('reference');
      if (!reference) throw new CodedError(AgentErrors.REQUEST_INVALID, 'reference is required');
      const matched = await matchingImages(reference, services.images);
      const removed = await removeImage(reference, services.images, services.collector, services.containerUsing);
      services.imageEvents.removed(matched, removed);
      sendJson(response, 200, removed);
    }),
    route('POST', ApiPath.prune, async ({ response }) => sendJson(response, 200, await services.collector.collect())),
    route('POST', ApiPath.auth, async ({ request, response }) => {
      const body = await readRequest(request, loginRequestSchema);
      const registry = body.registry || DEFAULT_REGISTRY;
      const credentials = { username: body.username, password: body.password };
      try {
        await services.registryClient(registry, credentials).verifyCredentials();
      } catch (error) {
        throw loginFailure(registry, error);
      }
      await services.credentials.put(registry, credentials);
      sendJson(response, 200, { status: 'Login Succeeded' });
    }),
    route('DELETE', ApiPath.auth, async ({ response, url }) => {
      const registry = url.searchParams.get('registry') || DEFAULT_REGISTRY;
      sendJson(response, 200, { removed: await services.credentials.remove(registry) });
    }),
    route('POST', ApiPath.pull, async ({ request, response }) => {
      const body = await readRequest(request, pullRequestSchema);
      const reference = parseReference(body.reference);
      const credentials =
        body.username !== undefined
          ? { username: body.username, password: body.password ?? '' }
          : await services.credentials.get(reference.registry);
      const log = services.logger.child({ reference: body.reference });
      // The pull goes on if the client goes away: its work is shared with other pulls and is wasted otherwise.
      const write = ndjson(response);
      const send = (event: PullEvent) => {
        if (event.type === 'warning') log.warn(event.message);
        write(event);
      };
      try {
        const record = await services.puller.pull(reference, services.registryClient(reference.registry, credentials), send);
        log.info({ digest: record.digest }, 'pulled');
        services.imageEvents.pulled(body.reference);
        send({ type: 'done', image: summarize(record) });
      } catch (error) {
        log.warn({ err: error }, 'pull failed');
        send({ type: 'error', message: (error as Error).message });
      }
      response.end();
    }),
  ];
}

/** Wrong credentials are the user's to fix (401); anything else (a refused connection, a 5xx) is the registry's. */
function loginFailure(registry: string, error: unknown): CodedError {
  if (error instanceof RegistryError && error.status === 401)
    return new CodedError(AgentErrors.LOGIN_DENIED, `login to ${registry} failed: ${error.message}`);
  // fetch says only "fetch failed"; its cause says what happened (ECONNREFUSED, a timeout).
  const cause = (error as Error).cause;
  const reason = cause instanceof Error ? cause.message : (error as Error).message;
  return new CodedError(AgentErrors.REGISTRY_UNAVAILABLE, `login to ${registry} failed: ${reason}`, { cause: error });
}

function summarize(record: ImageRecord): ImageSummary {
  return {
    repository: familiarName(record),
    tag: record.tag,
    digest: record.digest,
    id: record.configDigest,
    created: record.created,
    size: record.size,
  };
}

function newestFirst(a: ImageSummary, b: ImageSummary): number {
  return (b.created ?? '').localeCompare(a.created ?? '');
}
