import { randomBytes } from 'node:crypto';
import { digestOf, type DigestAlgorithm } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { fetchUrl, request, resolveLocation } from './http-client.js';

/** OCI content for tests: blobs, image/index/artifact manifests, and the requests that push them. */

export interface Blob {
  bytes: Buffer;
  digest: string;
  size: number;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string };
  urls?: string[];
}

/** A manifest as pushed: its exact bytes, digest and media type. */
export interface Manifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  size: number;
}

export interface PushedImage extends Manifest {
  config: Blob;
  layers: Blob[];
}

export function blobOf(bytes: Buffer | string, algorithm: DigestAlgorithm = 'sha256'): Blob {
  const buffer = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return { bytes: buffer, digest: digestOf(buffer, algorithm), size: buffer.length };
}

/** Random bytes, so every blob is new to the registry. */
export function makeBlob(size = 256, algorithm: DigestAlgorithm = 'sha256'): Blob {
  return blobOf(randomBytes(size), algorithm);
}

/** A digest of content the registry has never seen. */
export function unknownDigest(): string {
  return makeBlob(32).digest;
}

/** A repository name no other test uses, valid per the distribution-spec grammar. */
export function uniqueRepo(prefix = 'test'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

export function descriptorOf(content: Blob | Manifest, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: content.digest, size: content.size, ...extra };
}

function manifestOf(document: unknown, mediaType: string, algorithm: DigestAlgorithm = 'sha256'): Manifest {
  const bytes = Buffer.from(JSON.stringify(document, null, 2));
  return { bytes, digest: digestOf(bytes, algorithm), mediaType, size: bytes.length };
}

export interface ImageManifestOptions {
  config: Blob;
  layers?: Blob[];
  mediaType?: string;
  configMediaType?: string;
  layerMediaType?: string;
  artifactType?: string;
  subject?: Descriptor;
  annotations?: Record<string, string>;
  /** Extra top-level fields, or overrides (e.g. schemaVersion: 1). */
  extra?: Record<string, unknown>;
}

export function imageManifest(options: ImageManifestOptions): Manifest {
  const mediaType = options.mediaType ?? MediaType.ociManifest;
  const docker = mediaType === MediaType.dockerManifest;
  const document: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType,
    ...(options.artifactType ? { artifactType: options.artifactType } : {}),
    config: descriptorOf(options.config, options.configMediaType ?? (docker ? MediaType.dockerConfig : MediaType.ociConfig)),
    layers: (options.layers ?? []).map((layer) =>
      descriptorOf(layer, options.layerMediaType ?? (docker ? MediaType.dockerLayer : MediaType.ociLayerGzip)),
    ),
    ...(options.subject ? { subject: options.subject } : {}),
    ...(options.annotations ? { annotations: options.annotations } : {}),
    ...options.extra,
  };
  return manifestOf(document, mediaType);
}

export interface IndexOptions {
  manifests: Descriptor[];
  mediaType?: string;
  artifactType?: string;
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export function indexManifest(options: IndexOptions): Manifest {
  const mediaType = options.mediaType ?? MediaType.ociIndex;
  const document: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType,
    ...(options.artifactType ? { artifactType: options.artifactType } : {}),
    manifests: options.manifests,
    ...(options.subject ? { subject: options.subject } : {}),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  return manifestOf(document, mediaType);
}

/** An image manifest whose only layer is a foreign one (not in the registry) at `urls`. */
export function foreignLayerManifest(
  config: Blob,
  urls: string[],
  layerMediaType = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
): Manifest {
  const foreign = makeBlob(100);
  return imageManifest({ config, extra: { layers: [{ mediaType: layerMediaType, digest: foreign.digest, size: foreign.size, urls }] } });
}

/** The OCI empty descriptor's content, `{}`, used as the config of artifacts. */
export const EMPTY_CONFIG: Blob = blobOf('{}');

/** An artifact manifest (an image manifest with artifactType and the empty config), optionally with a subject. */
export function artifactManifest(options: {
  artifactType: string;
  layers?: Blob[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}): Manifest {
  return imageManifest({
    config: EMPTY_CONFIG,
    configMediaType: MediaType.ociEmpty,
    layerMediaType: 'application/octet-stream',
    artifactType: options.artifactType,
    layers: options.layers,
    subject: options.subject,
    annotations: options.annotations,
  });
}

/** The request that pushes a whole blob in one POST. */
export function postBlob(baseUrl: string, repository: string, blob: Blob): Promise<Response> {
  return request(baseUrl, `/v2/${repository}/blobs/uploads/?digest=${blob.digest}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: blob.bytes,
  });
}

/** Pushes a blob monolithically; throws unless the registry answers 201. */
export async function pushBlob(baseUrl: string, repository: string, blob: Blob): Promise<Blob> {
  const response = await postBlob(baseUrl, repository, blob);
  await expectStatus(response, 201, `push blob ${blob.digest} to ${repository}`);
  return blob;
}

export interface StartedUpload {
  /** The upload's URL, to PATCH, PUT, GET or DELETE. */
  location: URL;
  id: string;
}

/** Opens an upload session; throws unless the registry answers 202. */
export async function startUpload(baseUrl: string, repository: string): Promise<StartedUpload> {
  const response = await request(baseUrl, `/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  await expectStatus(response, 202, `start upload in ${repository}`);
  const location = resolveLocation(baseUrl, response.headers.get('location'));
  return { location, id: location.pathname.split('/').pop() ?? '' };
}

/** The upload URL with `?digest=` added (keeping any query the registry put in Location). */
export function withDigest(location: URL, digest: string): URL {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url;
}

/** PATCHes one chunk with Content-Range `<start>-<end>`. */
export function patchChunk(location: URL, chunk: Buffer, start: number): Promise<Response> {
  return fetchUrl(location, {
    method: 'PATCH',
    headers: {
      'Content-Type': 'application/octet-stream',
      'Content-Range': `${start}-${start + chunk.length - 1}`,
      'Content-Length': String(chunk.length),
    },
    body: chunk,
  });
}

/** Pushes a blob as the given chunks (PATCH each, then PUT ?digest= without body); returns the PUT response. */
export async function pushBlobInChunks(baseUrl: string, repository: string, blob: Blob, chunkSizes: number[]): Promise<Response> {
  const { location } = await startUpload(baseUrl, repository);
  let offset = 0;
  for (const size of chunkSizes) {
    const response = await patchChunk(location, blob.bytes.subarray(offset, offset + size), offset);
    await expectStatus(response, 202, `PATCH ${offset}-${offset + size - 1}`);
    offset += size;
  }
  if (offset !== blob.size) throw new Error(`chunk sizes add up to ${offset}, blob has ${blob.size} bytes`);
  return fetchUrl(withDigest(location, blob.digest), { method: 'PUT' });
}

export function putManifest(
  baseUrl: string,
  repository: string,
  reference: string,
  manifest: Manifest,
  contentType = manifest.mediaType,
): Promise<Response> {
  return request(baseUrl, `/v2/${repository}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'Content-Type': contentType },
    body: manifest.bytes,
  });
}

/** PUTs a manifest (by tag, or by its digest without a tag); throws unless the registry answers 201. */
export async function pushManifest(baseUrl: string, repository: string, manifest: Manifest, tag?: string): Promise<Manifest> {
  const response = await putManifest(baseUrl, repository, tag ?? manifest.digest, manifest);
  await expectStatus(response, 201, `push manifest ${manifest.digest} to ${repository}`);
  return manifest;
}

export interface PushImageOptions extends Partial<Omit<ImageManifestOptions, 'config' | 'layers'>> {
  tag?: string;
  config?: Blob;
  /** Layers to push, or how many random ones (default 1). */
  layers?: Blob[] | number;
}

/** Pushes an image: its config and layer blobs, then its manifest (by tag if given, else by digest). */
export async function pushImage(baseUrl: string, repository: string, options: PushImageOptions = {}): Promise<PushedImage> {
  const config = options.config ?? blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
  const layers = Array.isArray(options.layers) ? options.layers : Array.from({ length: options.layers ?? 1 }, () => makeBlob(512));
  for (const blob of [config, ...layers]) await pushBlob(baseUrl, repository, blob);
  const manifest = imageManifest({ ...options, config, layers });
  await pushManifest(baseUrl, repository, manifest, options.tag);
  return { ...manifest, config, layers };
}

/** Pushes an index over already-pushed images, each with its platform. */
export async function pushIndex(
  baseUrl: string,
  repository: string,
  children: Array<{ manifest: Manifest; platform?: { os: string; architecture: string; variant?: string } }>,
  options: Omit<IndexOptions, 'manifests'> & { tag?: string } = {},
): Promise<Manifest> {
  const manifest = indexManifest({
    ...options,
    manifests: children.map(({ manifest: child, platform }) => descriptorOf(child, child.mediaType, platform ? { platform } : {})),
  });
  return pushManifest(baseUrl, repository, manifest, options.tag);
}

async function expectStatus(response: Response, status: number, what: string): Promise<void> {
  if (response.status === status) {
    await response.arrayBuffer();
    return;
  }
  throw new Error(`${what}: expected ${status}, got ${response.status} ${await response.text()}`);
}
