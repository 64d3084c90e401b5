import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { LayerAction, PullEvent } from '../api.js';
import { concurrencyLimit, settleAll } from '../support/concurrency.js';
import type { BlobSource, ContentStore } from '../content/content-store.js';
import { chainIds, digestOf, isDigest, shortDigest } from '../../oci/digest.js';
import type { Platform } from '../../oci/platform.js';
import { formatReference, type ImageReference } from '../../oci/reference.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { unpackLayer } from '../unpack/layer-unpacker.js';
import type { ImageRecord, ImageStore, LayerRecord } from './image-store.js';
import type { Lease, Leases } from './leases.js';
import type { Descriptor, ImageManifest } from '../../oci/manifest.js';
import { parseImageConfig, parseManifest, selectPlatform, verifyManifestDigest } from './manifest.js';

export interface PullerOptions {
  platform: Platform;
  maxConcurrentDownloads: number;
  keepSetid: boolean;
  preserveOwnership: boolean;
}

export type PullReporter = (event: PullEvent) => void;

/** What every pull shares: the stores and the daemon-wide download slots. */
interface PullServices {
  content: ContentStore;
  snapshots: Snapshotter;
  images: ImageStore;
  options: PullerOptions;
  downloadSlot: <T>(task: () => Promise<T>) => Promise<T>;
}

type LayerProgress = (action: LayerAction, current?: number, total?: number) => void;

/** Image configs are read whole; a bigger one is refused rather than buffered. */
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/** How often a layer's byte progress is reported; state changes always are. */
const PROGRESS_INTERVAL_MS = 100;

/**
 * Pulls an image: resolves the reference (an index to this host's platform), stores manifests and config,
 * downloads the layers not yet unpacked (a bounded number at once, over all pulls) and unpacks each into
 * the snapshot of its chain id, then records the image. Layers shared with other images are neither
 * downloaded nor unpacked again.
 */
export class ImagePuller {
  private readonly services: PullServices;

  constructor(
    stores: { content: ContentStore; snapshots: Snapshotter; images: ImageStore },
    private readonly leases: Leases,
    options: PullerOptions,
  ) {
    this.services = { ...stores, options, downloadSlot: concurrencyLimit(options.maxConcurrentDownloads) };
  }

  async pull(reference: ImageReference, registry: RegistryClient, report: PullReporter): Promise<ImageRecord> {
    const lease = await this.leases.acquire();
    try {
      return await new PullOperation(this.services, reference, registry, lease, report).run();
    } finally {
      lease.release();
    }
  }
}

/** One pull's state: its reference, registry, lease and reporter. */
class PullOperation {
  constructor(
    private readonly deps: PullServices,
    private readonly reference: ImageReference,
    private readonly registry: RegistryClient,
    private readonly lease: Lease,
    private readonly report: PullReporter,
  ) {}

  async run(): Promise<ImageRecord> {
    const { repository } = this.reference;
    const wanted = this.reference.digest ?? this.reference.tag ?? 'latest';
    this.report({ type: 'status', message: `${this.reference.digest ?? this.reference.tag}: Pulling from ${repository}` });
    const top = await this.fetchManifest(wanted);
    const parsed = parseManifest(top.bytes, top.mediaType);
    const image =
      parsed.kind === 'image'
        ? { digest: top.digest, manifest: parsed.manifest }
        : await this.fetchPlatformManifest(selectPlatform(parsed.manifests, this.deps.options.platform));

    const config = parseImageConfig(await this.fetchConfig(image.manifest.config), image.manifest.layers.length);
    const chains = chainIds(config.rootfs.diff_ids);
    const layers: LayerRecord[] = image.manifest.layers.map((layer, index) => ({
      digest: layer.digest,
      size: layer.size,
      mediaType: layer.mediaType,
      diffId: config.rootfs.diff_ids[index] as string,
      chainId: chains[index] as string,
    }));
    await this.lease.add(layers.flatMap((layer) => [layer.digest, layer.chainId]));
    // Settle every layer before failing: none may go on writing after the pull has ended and its lease is gone.
    const fetched = await settleAll(layers.map((layer, index) => this.pullLayer(layer, layers[index - 1]?.chainId)));

    const record = await this.record(top.digest, image.digest, image.manifest, config, layers);
    const previous = await this.deps.images.get(record.reference);
    await this.deps.images.put(record);
    const upToDate = previous?.digest === record.digest && !fetched.includes(true);
    this.report({ type: 'status', message: `Digest: ${top.digest}` });
    this.report({
      type: 'status',
      message: `Status: ${upToDate ? 'Image is up to date' : 'Downloaded newer image'} for ${formatReference(this.reference)}`,
    });
    return record;
  }

  private async fetchManifest(reference: string): Promise<{ bytes: Buffer; mediaType: string | undefined; digest: string }> {
    const { bytes, mediaType } = await this.registry.fetchManifest(this.reference.repository, reference);
    const byDigest = isDigest(reference);
    if (byDigest) verifyManifestDigest(bytes, reference);
    const digest = byDigest ? reference : digestOf(bytes);
    await this.lease.add([digest]);
    await this.deps.content.writeSmall(digest, bytes);
    return { bytes, mediaType, digest };
  }

  private async fetchPlatformManifest(descriptor: Descriptor): Promise<{ digest: string; manifest: ImageManifest }> {
    const child = await this.fetchManifest(descriptor.digest);
    const parsed = parseManifest(child.bytes, child.mediaType ?? descriptor.mediaType);
    if (parsed.kind !== 'image') throw new Error(`index entry ${descriptor.digest} is not an image manifest`);
    return { digest: child.digest, manifest: parsed.manifest };
  }

  private async fetchConfig(descriptor: Descriptor): Promise<Buffer> {
    if (descriptor.size > MAX_CONFIG_BYTES)
      throw new Error(`image config of ${descriptor.size} bytes is larger than the ${MAX_CONFIG_BYTES} accepted`);
    await this.lease.add([descriptor.digest]);
    await this.deps.content.ingest(descriptor, (offset) => this.registry.fetchBlob(this.reference.repository, descriptor.digest, offset));
    return this.deps.content.readSmall(descriptor.digest);
  }

  /**
   * Returns whether anything was downloaded or unpacked. A downloaded layer is unpacked while its blob is
   * flushed to disk (which, on a slow disk, takes as long as the download); one already stored is read back.
   */
  private async pullLayer(layer: LayerRecord, parent: string | undefined): Promise<boolean> {
    const progress = this.layerProgress(layer);
    if (await this.deps.snapshots.info(layer.chainId)) {
      progress('Already exists');
      return false;
    }
    progress('Pulling fs layer');
    let created: boolean | undefined;
    const { downloaded } = await this.deps.content.ingest(layer, this.slottedSource(layer.digest), {
      onProgress: (bytes) => progress('Downloading', bytes, layer.size),
      whileCommitting: async (verified) => {
        progress('Verifying Checksum');
        progress('Download complete');
        created = await this.unpack(layer, parent, verified, progress);
      },
    });
    if (created === undefined) {
      progress('Download complete');
      created = await this.unpack(layer, parent, this.deps.content.read(layer.digest), progress);
    }
    progress('Pull complete');
    return downloaded || created;
  }

  /** The blob's bytes from the registry, each download holding one of the daemon's download slots until its stream ends. */
  private slottedSource(digest: string): BlobSource {
    return (offset) =>
      new Promise((resolve, reject) => {
        this.deps
          .downloadSlot(async () => {
            const served = await this.registry.fetchBlob(this.reference.repository, digest, offset);
            resolve(served);
            await finished(served.stream);
          })
          .catch(reject);
      });
  }

  private async unpack(layer: LayerRecord, parent: string | undefined, blob: Readable, progress: LayerProgress): Promise<boolean> {
    const { created } = await this.deps.snapshots.create({ chainId: layer.chainId, diffId: layer.diffId, parent }, (directory, files) =>
      unpackLayer(
        { ...layer, blob },
        directory,
        {
          keepSetid: this.deps.options.keepSetid,
          preserveOwnership: this.deps.options.preserveOwnership,
          warn: (message) => this.report({ type: 'warning', message: `layer ${shortDigest(layer.digest)}: ${message}` }),
          onProgress: (bytes) => progress('Extracting', bytes, layer.size),
        },
        files,
      ),
    );
    if (!created) blob.destroy();
    return created;
  }

  /** Reports a layer's state changes at once and its byte progress at most every PROGRESS_INTERVAL_MS. */
  private layerProgress(layer: LayerRecord): LayerProgress {
    const id = shortDigest(layer.digest);
    let last: { action: LayerAction; at: number } | undefined;
    return (action, current, total) => {
      const now = Date.now();
      const changed = last?.action !== action;
      if (!changed && current !== total && now - (last?.at ?? 0) < PROGRESS_INTERVAL_MS) return;
      last = { action, at: now };
      this.report({ type: 'layer', id, action, current, total });
    };
  }

  private async record(
    digest: string,
    manifestDigest: string,
    manifest: ImageManifest,
    config: ReturnType<typeof parseImageConfig>,
    layers: LayerRecord[],
  ): Promise<ImageRecord> {
    const { registry, repository, tag } = this.reference;
    let size = 0;
    for (const layer of layers) size += (await this.deps.snapshots.info(layer.chainId))?.size ?? 0;
    const name = `${registry}/${repository}`;
    return {
      reference: this.reference.digest ? `${name}@${this.reference.digest}` : `${name}:${tag}`,
      registry,
      repository,
      tag: this.reference.digest ? undefined : tag,
      digest,
      manifestDigest,
      configDigest: manifest.config.digest,
      layers,
      platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) },
      created: config.created,
      size,
      pulledAt: new Date().toISOString(),
    };
  }
}
