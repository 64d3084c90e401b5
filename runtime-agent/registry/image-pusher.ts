import { pipeline, Transform } from 'node:stream';
import type { PushLayerAction } from '../api.js';
import type { ContentStore } from '../content/content-store.js';
import { shortDigest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { parseManifest } from '../image/manifest.js';
import { concurrencyLimit, settleAll } from '../support/concurrency.js';
import type { PushEvent } from '../verbs-api.js';
import type { UploadClient } from './upload-client.js';

/** An image in the content store, ready to push: its manifest's exact bytes are what the registry gets. */
export interface ImageToPush {
  /** Digest of an image manifest (not an index) in the content store; its config and layers must be there too. */
  manifestDigest: string;
  /** A repository of the target registry known to hold these blobs: they are mounted from it, not uploaded. */
  mountFrom: string | undefined;
}

export interface PushTarget {
  registry: string;
  repository: string;
  tag: string;
}

export interface PushDependencies {
  content: ContentStore;
  /** The target repository's upload client; `mountFrom` joins its token's scopes. */
  uploadClient: UploadClient;
  report: (event: PushEvent) => void;
}

export interface PushResult {
  digest: string;
  size: number;
}

/** Blobs uploaded at once, as docker's max-concurrent-uploads (5). */
const CONCURRENT_UPLOADS = 5;
/** A blob up to this size (an image config, the layer of a RUN that writes one file) is sent in one request, from memory. */
const SMALL_BLOB_BYTES = 64 * 1024;
/** How often a blob's byte progress is reported; state changes always are. */
const PROGRESS_INTERVAL_MS = 100;

/**
 * `docker push`: every blob the registry lacks is mounted from `mountFrom` or uploaded (streamed from the
 * content store), the ones it has are skipped after a HEAD, then the manifest is put under the tag. The
 * builder calls this with what it built; the daemon's push route with a pulled or tagged image.
 */
export async function pushImage(image: ImageToPush, target: PushTarget, deps: PushDependencies): Promise<PushResult> {
  const bytes = await deps.content.readSmall(image.manifestDigest);
  const parsed = parseManifest(bytes, undefined);
  if (parsed.kind !== 'image') throw new Error(`${image.manifestDigest} is an index: push the image manifest of one platform`);
  const { manifest } = parsed;
  deps.report({ type: 'status', message: `The push refers to repository [${target.registry}/${target.repository}]` });
  const layers = [...manifest.layers].reverse();
  for (const layer of layers) deps.report({ type: 'layer', id: shortDigest(layer.digest), action: 'Preparing' });
  const slot = concurrencyLimit(CONCURRENT_UPLOADS);
  await settleAll([
    ...layers.map((layer) => slot(() => pushBlob(layer, image.mountFrom, deps, true))),
    slot(() => pushBlob(manifest.config, image.mountFrom, deps, false)),
  ]);
  return putUnderTag(image.manifestDigest, bytes, manifest.mediaType, target.tag, deps);
}

/**
 * Another tag for an image pushImage already sent to the same repository: the manifest alone, one request,
 * without the blobs' checks again.
 */
export async function tagPushedImage(manifestDigest: string, tag: string, deps: PushDependencies): Promise<PushResult> {
  const bytes = await deps.content.readSmall(manifestDigest);
  const parsed = parseManifest(bytes, undefined);
  if (parsed.kind !== 'image') throw new Error(`${manifestDigest} is an index: push the image manifest of one platform`);
  return putUnderTag(manifestDigest, bytes, parsed.manifest.mediaType, tag, deps);
}

async function putUnderTag(
  digest: string,
  bytes: Buffer,
  mediaType: string | undefined,
  tag: string,
  deps: PushDependencies,
): Promise<PushResult> {
  await deps.uploadClient.putManifest(tag, mediaType ?? MediaType.ociManifest, bytes);
  const result = { digest, size: bytes.length };
  deps.report({ type: 'status', message: `${tag}: digest: ${result.digest} size: ${result.size}` });
  return result;
}

async function pushBlob(
  blob: { digest: string; size: number },
  mountFrom: string | undefined,
  deps: PushDependencies,
  shown: boolean,
): Promise<void> {
  const progress = blobProgress(blob.digest, shown, deps.report);
  if (await deps.uploadClient.hasBlob(blob.digest)) return progress('Layer already exists');
  if (mountFrom && (await deps.uploadClient.mountBlob(blob.digest, mountFrom))) return progress(`Mounted from ${mountFrom}`);
  if (!(await deps.content.has(blob.digest))) throw new Error(`blob ${blob.digest} is not in the content store`);
  progress('Pushing', 0, blob.size);
  if (blob.size <= SMALL_BLOB_BYTES) {
    // Two round trips fewer than a session: most of a small blob's push time is round trips.
    await deps.uploadClient.uploadSmallBlob(blob.digest, await deps.content.readSmall(blob.digest));
    return progress('Pushed');
  }
  let sent = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sent += chunk.length;
      progress('Pushing', sent, blob.size);
      callback(null, chunk);
    },
  });
  // pipeline, not pipe: a read error must fail the upload rather than end it short.
  await deps.uploadClient.uploadBlob(
    blob.digest,
    pipeline(deps.content.read(blob.digest), counter, () => undefined),
  );
  progress('Pushed');
}

function blobProgress(
  digest: string,
  shown: boolean,
  report: PushDependencies['report'],
): (action: PushLayerAction, current?: number, total?: number) => void {
  const id = shortDigest(digest);
  let last = 0;
  return (action, current, total) => {
    if (!shown) return;
    const now = Date.now();
    if (action === 'Pushing' && current !== 0 && current !== total && now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    report({ type: 'layer', id, action, current, total });
  };
}
