import type { PruneResult } from '../api.js';
import type { ContentStore } from '../content/content-store.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import type { ImageRecord, ImageStore } from './image-store.js';
import type { Leases } from './leases.js';

export interface CollectOptions {
  /** Only these images' content is considered (after `rmi`); all content when absent (`prune`). */
  candidatesFrom?: ImageRecord[];
}

/**
 * Deletes blobs and snapshots that no image record references and no pull in progress holds. `prune` also
 * sweeps what interrupted pulls left: partial downloads and half-written snapshots.
 */
export class GarbageCollector {
  constructor(
    private readonly images: ImageStore,
    private readonly content: ContentStore,
    private readonly snapshots: Snapshotter,
    private readonly leases: Leases,
    /** Snapshots containers use, kept even when no image references them any more. */
    private readonly containerLayers: () => Set<string>,
  ) {}

  collect(options: CollectOptions = {}): Promise<PruneResult> {
    return this.leases.collect(async () => {
      const referenced = referencedBy(await this.images.list());
      const inUse = this.containerLayers();
      const keep = (key: string) => referenced.has(key) || inUse.has(key) || this.leases.isLeased(key);
      const candidates = options.candidatesFrom ? referencedBy(options.candidatesFrom) : undefined;
      const result: PruneResult = { deletedBlobs: [], deletedSnapshots: [], reclaimedBytes: 0 };
      for (const blob of await this.content.list()) {
        if (keep(blob.digest) || (candidates && !candidates.has(blob.digest))) continue;
        await this.content.remove(blob.digest);
        result.deletedBlobs.push(blob.digest);
        result.reclaimedBytes += blob.size;
      }
      for (const snapshot of await this.snapshots.list()) {
        if (keep(snapshot.chainId) || (candidates && !candidates.has(snapshot.chainId))) continue;
        await this.snapshots.remove(snapshot.chainId);
        result.deletedSnapshots.push(snapshot.chainId);
        result.reclaimedBytes += snapshot.size;
      }
      if (!candidates) await this.sweepLeftovers();
      return result;
    });
  }

  private async sweepLeftovers(): Promise<void> {
    for (const digest of await this.content.listPartial()) {
      if (!this.leases.isLeased(digest)) await this.content.removePartial(digest);
    }
    await this.snapshots.removeIncomplete();
  }
}

function referencedBy(images: readonly ImageRecord[]): Set<string> {
  const keys = new Set<string>();
  for (const image of images) {
    keys.add(image.digest).add(image.manifestDigest).add(image.configDigest);
    for (const layer of image.layers) keys.add(layer.digest).add(layer.chainId);
  }
  return keys;
}
