import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { chainIds, digestOf } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import type { Platform } from '../../oci/platform.js';
import { familiarName, parseReference } from '../../oci/reference.js';
import { CodedError } from '../../platform/errors.js';
import type { ContentStore } from '../content/content-store.js';
import { AgentErrors } from '../errors.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { unpackLayer } from '../unpack/layer-unpacker.js';
import { archivePathComponents } from '../unpack/rooted-path.js';
import type { ApplyOptions } from '../unpack/layer-applier.js';
import { findImage } from './image-lookup.js';
import type { ImageRecord, ImageStore, LayerRecord } from './image-store.js';
import { parseImageConfig, parseManifest, selectPlatform } from './manifest.js';

/**
 * `save` and `load`. A saved archive is what `docker save` writes since docker 25: an OCI image layout
 * (`oci-layout`, `index.json`, `blobs/sha256/*`) with docker's `manifest.json` beside it, so both `docker load`
 * (any version: it reads manifest.json and decompresses layers itself) and OCI tools read it; `--format oci`
 * leaves manifest.json out. Blobs are the stored ones, byte for byte, so the image id and manifest digest
 * survive a round trip. `load` takes either layout, and the older docker archive whose layers are
 * `<id>/layer.tar`. Everything streams: a save from the content store to the client, a load through files
 * in a staging directory (a docker archive may put manifest.json after its layers).
 */

export interface ArchiveStores {
  images: ImageStore;
  content: ContentStore;
  snapshots: Snapshotter;
}

export type ArchiveFormat = 'docker' | 'oci';

/** Small JSON files of an archive are read whole; a bigger one is refused rather than buffered. */
const MAX_METADATA_BYTES = 4 * 1024 * 1024;

/** Annotation containerd and docker use for an image's full name in an OCI layout. */
const IMAGE_NAME_ANNOTATION = 'io.containerd.image.name';
const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

interface SavedImage {
  record: ImageRecord;
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  names: string[];
}

/** Resolves every name first, so an unknown image fails the save before a byte is written. */
export async function resolveForSave(stores: ArchiveStores, names: readonly string[]): Promise<SavedImage[]> {
  const saved = new Map<string, SavedImage>();
  for (const name of names) {
    const record = await findImage(name, stores.images);
    const bytes = await stores.content.readSmall(record.manifestDigest);
    const parsed = parseManifest(bytes, undefined);
    if (parsed.kind !== 'image') throw new Error(`${record.manifestDigest} is not an image manifest`);
    const entry = saved.get(record.manifestDigest) ?? {
      record,
      manifest: { mediaType: parsed.manifest.mediaType ?? MediaType.ociManifest, digest: record.manifestDigest, size: bytes.length },
      config: parsed.manifest.config,
      layers: parsed.manifest.layers,
      names: [],
    };
    if (record.tag !== undefined && record.reference === referenceKey(name)) entry.names.push(`${familiarName(record)}:${record.tag}`);
    saved.set(record.manifestDigest, entry);
  }
  return [...saved.values()];
}

function referenceKey(name: string): string | undefined {
  try {
    const reference = parseReference(name);
    return `${reference.registry}/${reference.repository}:${reference.tag ?? 'latest'}`;
  } catch {
    return undefined;
  }
}

export async function writeArchive(
  stores: ArchiveStores,
  images: readonly SavedImage[],
  format: ArchiveFormat,
  output: Writable,
): Promise<void> {
  const pack = tar.pack();
  const piping = pipeline(pack, output);
  const written = new Set<string>();
  for (const image of images) {
    for (const blob of [image.manifest, image.config, ...image.layers]) {
      if (written.has(blob.digest)) continue;
      written.add(blob.digest);
      await packStream(pack, blobPath(blob.digest), blob.size, stores.content.read(blob.digest));
    }
  }
  packFile(pack, 'oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  packFile(pack, 'index.json', JSON.stringify(ociIndex(images)));
  if (format === 'docker') packFile(pack, 'manifest.json', JSON.stringify(dockerManifest(images)));
  pack.finalize();
  await piping;
}

function ociIndex(images: readonly SavedImage[]) {
  const manifests = images.flatMap((image) =>
    (image.names.length > 0 ? image.names : [undefined]).map((name) => ({
      ...image.manifest,
      ...(name
        ? { annotations: { [IMAGE_NAME_ANNOTATION]: canonicalName(name), [REF_NAME_ANNOTATION]: name.slice(name.lastIndexOf(':') + 1) } }
        : {}),
    })),
  );
  return { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
}

function dockerManifest(images: readonly SavedImage[]) {
  return images.map((image) => ({
    Config: blobPath(image.config.digest),
    RepoTags: image.names,
    Layers: image.layers.map((layer) => blobPath(layer.digest)),
  }));
}

function canonicalName(name: string): string {
  const reference = parseReference(name);
  return `${reference.registry}/${reference.repository}:${reference.tag ?? 'latest'}`;
}

function blobPath(digest: string): string {
  return `blobs/${digest.replace(':', '/')}`;
}

function packFile(pack: tar.Pack, name: string, text: string): void {
  pack.entry({ name, mode: 0o644, mtime: new Date(0) }, text);
}

async function packStream(pack: tar.Pack, name: string, size: number, content: Readable): Promise<void> {
  const entry = pack.entry({ name, size, mode: 0o644, mtime: new Date(0) });
  await pipeline(content, entry);
}

export interface LoadOptions {
  /** A directory on the data volume for the archive's files while it is read. */
  stagingRoot: string;
  apply: Omit<ApplyOptions, 'warn'>;
  /** The platform picked from an index in the archive. */
  platform: Platform;
  warn: (message: string) => void;
}

/** Loads every image of a docker or OCI archive; returns docker's `Loaded image: name:tag` lines. */
export async function loadArchive(stores: ArchiveStores, input: Readable, options: LoadOptions): Promise<string[]> {
  await mkdir(options.stagingRoot, { recursive: true, mode: 0o700 });
  const staging = await mkdtemp(path.join(options.stagingRoot, 'load-'));
  try {
    const files = await stageArchive(input, staging);
    const loader = new ArchiveLoader(stores, files, options);
    return files.has('index.json') && files.has('oci-layout') ? await loader.loadOciLayout() : await loader.loadDockerArchive();
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Writes each regular file of the archive to `<staging>/<n>` and returns archive name -> file. No name from the
 * archive becomes a path on disk, so no entry can land outside the staging directory.
 */
async function stageArchive(input: Readable, staging: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const extract = tar.extract();
  const feeding = pipeline(input, extract);
  try {
    for await (const entry of extract) {
      if (entry.header.type === 'file' || entry.header.type === 'contiguous-file') {
        const file = path.join(staging, String(files.size));
        files.set(archivePathComponents(entry.header.name).components.join('/'), file);
        await pipeline(entry, createWriteStream(file, { mode: 0o600 }));
      } else entry.resume();
    }
    await feeding;
  } catch (error) {
    extract.destroy();
    await feeding.catch(() => undefined);
    throw new CodedError(AgentErrors.REQUEST_INVALID, `the archive cannot be read: ${(error as Error).message}`);
  }
  return files;
}

class ArchiveLoader {
  /** Layer files of a docker archive (`<id>/layer.tar`) by the digest computed for them. */
  private readonly byDigest = new Map<string, string>();

  constructor(
    private readonly stores: ArchiveStores,
    private readonly files: Map<string, string>,
    private readonly options: LoadOptions,
  ) {}

  async loadOciLayout(): Promise<string[]> {
    const index = JSON.parse(await this.readMetadata('index.json')) as { manifests?: Descriptor[] };
    const loaded: string[] = [];
    for (const descriptor of index.manifests ?? []) {
      const name = imageName(descriptor.annotations);
      const top = await this.readMetadataBuffer(blobPath(descriptor.digest));
      const parsed = parseManifest(top, descriptor.mediaType);
      const manifestDescriptor = parsed.kind === 'index' ? selectPlatform(parsed.manifests, this.options.platform) : descriptor;
      const manifestBytes = parsed.kind === 'index' ? await this.readMetadataBuffer(blobPath(manifestDescriptor.digest)) : top;
      const manifest = parseManifest(manifestBytes, manifestDescriptor.mediaType);
      if (manifest.kind !== 'image')
        throw new CodedError(AgentErrors.REQUEST_INVALID, `${manifestDescriptor.digest} is not an image manifest`);
      if (parsed.kind === 'index') await this.stores.content.writeSmall(descriptor.digest, top);
      await this.stores.content.writeSmall(manifestDescriptor.digest, manifestBytes);
      const record = await this.importImage(
        manifestDescriptor.digest,
        manifest.manifest.config,
        manifest.manifest.layers,
        name,
        descriptor.digest,
      );
      loaded.push(loadedLine(record));
    }
    return loaded;
  }

  async loadDockerArchive(): Promise<string[]> {
    if (!this.files.has('manifest.json'))
      throw new CodedError(
        AgentErrors.REQUEST_INVALID,
        'the archive has neither manifest.json (docker save) nor index.json and oci-layout (OCI)',
      );
    const entries = JSON.parse(await this.readMetadata('manifest.json')) as Array<{
      Config: string;
      RepoTags: string[] | null;
      Layers: string[];
    }>;
    const loaded: string[] = [];
    for (const entry of entries) {
      const configBytes = await this.readMetadataBuffer(entry.Config);
      const configDigest = digestOf(configBytes);
      await this.stores.content.writeSmall(configDigest, configBytes);
      const layers: Descriptor[] = [];
      for (const layerName of entry.Layers) layers.push(await this.layerDescriptor(layerName));
      const config = { mediaType: MediaType.dockerConfig, digest: configDigest, size: configBytes.length };
      const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerManifest, config, layers }));
      const manifestDigest = digestOf(manifestBytes);
      await this.stores.content.writeSmall(manifestDigest, manifestBytes);
      const names = entry.RepoTags ?? [];
      if (names.length === 0) throw unnamed(configDigest);
      for (const name of names) loaded.push(loadedLine(await this.importImage(manifestDigest, config, layers, name, manifestDigest)));
    }
    return loaded;
  }

  /** A layer file of a docker archive as a blob: its digest and what compression its first bytes show. */
  private async layerDescriptor(name: string): Promise<Descriptor> {
    const file = this.file(name);
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    const { size } = await stat(file);
    const digest = `sha256:${hash.digest('hex')}`;
    this.byDigest.set(digest, file);
    return { mediaType: await layerMediaType(file), digest, size };
  }

  private async importImage(
    manifestDigest: string,
    configDescriptor: Descriptor,
    layerDescriptors: Descriptor[],
    name: string | undefined,
    topDigest: string,
  ): Promise<ImageRecord> {
    if (name === undefined) throw unnamed(configDescriptor.digest);
    const configBytes = await this.readMetadataBuffer(blobPath(configDescriptor.digest)).catch(() =>
      this.stores.content.readSmall(configDescriptor.digest),
    );
    await this.stores.content.writeSmall(configDescriptor.digest, configBytes);
    const config = parseImageConfig(configBytes, layerDescriptors.length);
    const chains = chainIds(config.rootfs.diff_ids);
    const layers: LayerRecord[] = layerDescriptors.map((layer, index) => ({
      digest: layer.digest,
      size: layer.size,
      mediaType: layer.mediaType,
      diffId: config.rootfs.diff_ids[index] as string,
      chainId: chains[index] as string,
    }));
    let size = 0;
    for (const [index, layer] of layers.entries()) size += await this.importLayer(layer, layers[index - 1]?.chainId);
    const reference = parseReference(name);
    const tag = reference.tag ?? 'latest';
    const record: ImageRecord = {
      reference: `${reference.registry}/${reference.repository}:${tag}`,
      registry: reference.registry,
      repository: reference.repository,
      tag,
      digest: topDigest,
      manifestDigest,
      configDigest: configDescriptor.digest,
      layers,
      platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) },
      created: config.created,
      size,
      pulledAt: new Date().toISOString(),
    };
    await this.stores.images.put(record);
    return record;
  }

  /** Stores the layer blob (verified against its digest) and unpacks its snapshot unless both exist; returns its size. */
  private async importLayer(layer: LayerRecord, parent: string | undefined): Promise<number> {
    const existing = await this.stores.snapshots.info(layer.chainId);
    if (!existing || !(await this.stores.content.has(layer.digest))) {
      const file = this.file(blobPath(layer.digest), layer.digest);
      await this.stores.content.ingest(layer, async (offset) => ({ stream: createReadStream(file, { start: offset }), offset }));
    }
    if (!existing)
      await this.stores.snapshots.create({ chainId: layer.chainId, diffId: layer.diffId, parent }, (directory, files) =>
        unpackLayer(
          { ...layer, blob: this.stores.content.read(layer.digest) },
          directory,
          { ...this.options.apply, warn: this.options.warn },
          files,
        ),
      );
    return (await this.stores.snapshots.info(layer.chainId))?.size ?? 0;
  }

  /** The staged file of an archive entry; a docker archive names layers by path, found here by digest too. */
  private file(name: string, digest?: string): string {
    const file = this.files.get(archivePathComponents(name).components.join('/')) ?? (digest ? this.byDigest.get(digest) : undefined);
    if (!file) throw new CodedError(AgentErrors.REQUEST_INVALID, `the archive has no ${name}`);
    return file;
  }

  private async readMetadata(name: string): Promise<string> {
    return (await this.readMetadataBuffer(name)).toString('utf8');
  }

  private async readMetadataBuffer(name: string): Promise<Buffer> {
    const file = this.file(name);
    if ((await stat(file)).size > MAX_METADATA_BYTES) throw new CodedError(AgentErrors.REQUEST_INVALID, `${name} is too large`);
    return readFile(file);
  }
}

function loadedLine(record: ImageRecord): string {
  return `Loaded image: ${familiarName(record)}:${record.tag}`;
}

/** The agent keeps images by name: one the archive does not name would be collected at once. */
function unnamed(configDigest: string): CodedError {
  return new CodedError(
    AgentErrors.REQUEST_INVALID,
    `image ${configDigest} in the archive has no name: save it by name (docker save name:tag), not by id`,
  );
}

function imageName(annotations: Record<string, string> | undefined): string | undefined {
  const full = annotations?.[IMAGE_NAME_ANNOTATION];
  if (full) return full;
  const ref = annotations?.[REF_NAME_ANNOTATION];
  // A bare tag (`v1`, what skopeo writes) names no repository.
  return ref && /[/:]/.test(ref) ? ref : undefined;
}

/** gzip and zstd by their magic numbers; anything else is a plain tar. */
async function layerMediaType(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    const head = buffer.subarray(0, bytesRead);
    if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.dockerLayer;
    if (head.equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return MediaType.ociLayerZstd;
    return 'application/vnd.docker.image.rootfs.diff.tar';
  } finally {
    await handle.close();
  }
}
