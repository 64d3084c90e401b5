import path from 'node:path';
import type { ContentStore } from '../content/content-store.js';
import type { ContainerManager } from '../container/container-manager.js';
import type { GarbageCollector } from '../image/garbage-collector.js';
import { loadArchive, resolveForSave, writeArchive } from '../image/image-archive.js';
import { imageHistory, inspectImage, tagImage } from '../image/image-details.js';
import { findImage } from '../image/image-lookup.js';
import type { ImageRecord, ImageStore } from '../image/image-store.js';
import type { Platform } from '../../oci/platform.js';
import { familiarName, parseReference } from '../../oci/reference.js';
import type { Logger } from '../../platform/logger.js';
import type { CredentialStore } from '../registry/credential-store.js';
import { pushImage } from '../registry/image-pusher.js';
import type { UploadClient } from '../registry/upload-client.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { imageListSchema, pushRequestSchema, tagRequestSchema, VerbPath, type LoadResult, type PushEvent } from '../verbs-api.js';
import { ndjson, readRequest, route, sendJson, type Route } from './http-api.js';
import { systemRoutes } from './system-routes.js';
import { containerVerbRoutes } from './container-verb-routes.js';

/** What the everyday verbs need of the daemon. */
export interface VerbServices {
  images: ImageStore;
  content: ContentStore;
  snapshots: Snapshotter;
  containers: ContainerManager;
  collector: GarbageCollector;
  credentials: CredentialStore;
  /** An upload client for a repository, with the credentials login saved for its registry. */
  uploadClient: (registry: string, repository: string, mountSource: string | undefined) => Promise<UploadClient>;
  /** Where `load` stages an archive's files: on the data volume, never in memory. */
  stagingDir: string;
  unpack: { keepSetid: boolean; preserveOwnership: boolean; platform: Platform };
  logger: Logger;
}

/** Every route of the everyday verbs: images (tag, push, save, load, inspect, history), containers, system. */
export function verbRoutes(services: VerbServices): Route[] {
  return [...imageVerbRoutes(services), ...containerVerbRoutes(services.containers, services.logger), ...systemRoutes(services)];
}

function imageVerbRoutes(services: VerbServices): Route[] {
  const stores = { images: services.images, content: services.content, snapshots: services.snapshots };
  return [
    route('POST', VerbPath.tag, async ({ request, response }) => {
      const body = await readRequest(request, tagRequestSchema);
      const record = await tagImage(services.images, body.source, body.target);
      sendJson(response, 200, { reference: `${familiarName(record)}:${record.tag}` });
    }),
    route('POST', VerbPath.push, async ({ request, response }) => {
      const body = await readRequest(request, pushRequestSchema);
      const reference = parseReference(body.reference);
      const image = await findImage(body.reference, services.images);
      const mountFrom = await mountSource(services.images, image);
      const uploadClient = await services.uploadClient(reference.registry, reference.repository, mountFrom);
      const send = ndjson(response);
      const log = services.logger.child({ reference: body.reference });
      try {
        const target = { registry: reference.registry, repository: reference.repository, tag: reference.tag ?? 'latest' };
        const pushed = await pushImage({ manifestDigest: image.manifestDigest, mountFrom }, target, {
          content: services.content,
          uploadClient,
          report: (event) => send(event),
        });
        log.info({ digest: pushed.digest }, 'pushed');
        send({ type: 'done', tag: target.tag, ...pushed } satisfies PushEvent);
      } catch (error) {
        log.warn({ err: error }, 'push failed');
        send({ type: 'error', message: (error as Error).message } satisfies PushEvent);
      }
      response.end();
    }),
    route('POST', VerbPath.save, async ({ request, response }) => {
      const body = await readRequest(request, imageListSchema);
      const images = await resolveForSave(stores, body.images);
      response.writeHead(200, { 'Content-Type': 'application/x-tar' });
      await writeArchive(stores, images, body.format, response).catch((error: Error) => {
        services.logger.warn({ err: error }, 'save failed');
        response.destroy(error);
      });
    }),
    route('POST', VerbPath.load, async ({ request, response }) => {
      const loaded = await loadArchive(stores, request, {
        stagingRoot: services.stagingDir,
        apply: { keepSetid: services.unpack.keepSetid, preserveOwnership: services.unpack.preserveOwnership },
        platform: services.unpack.platform,
        warn: (message) => services.logger.warn(message),
      });
      sendJson(response, 200, { loaded } satisfies LoadResult);
    }),
    route('GET', VerbPath.imageInspect, async ({ response, url }) => {
      sendJson(response, 200, await inspectImage(services.images, services.content, url.searchParams.get('name') ?? ''));
    }),
    route('GET', VerbPath.history, async ({ response, url }) => {
      sendJson(
        response,
        200,
        await imageHistory(services.images, services.content, services.snapshots, url.searchParams.get('name') ?? ''),
      );
    }),
  ];
}

/** Another repository of the same registry that this image was pulled from or pushed to: its blobs can be mounted. */
async function mountSource(images: ImageStore, image: ImageRecord): Promise<string | undefined> {
  const others = (await images.list()).filter(
    (other) => other.manifestDigest === image.manifestDigest && other.registry === image.registry && other.repository !== image.repository,
  );
  return others.sort((a, b) => a.pulledAt.localeCompare(b.pulledAt))[0]?.repository;
}

export function stagingDirectory(dataDir: string): string {
  return path.join(dataDir, 'tmp');
}
