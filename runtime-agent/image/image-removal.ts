import type { RemoveResult } from '../api.js';
import type { GarbageCollector } from './garbage-collector.js';
import { matchingImages } from './image-lookup.js';
import type { ImageStore } from './image-store.js';

/**
 * `rmi`: untags an image given by reference or by (a prefix of) its id, then deletes the content only it
 * used, as docker does; content other images share stays.
 */
export async function removeImage(nameOrId: string, images: ImageStore, collector: GarbageCollector): Promise<RemoveResult> {
  const records = await matchingImages(nameOrId, images);
  const untagged: string[] = [];
  for (const record of records) {
    if (await images.remove(record.reference)) untagged.push(record.reference);
  }
  const { deletedBlobs, deletedSnapshots } = await collector.collect({ candidatesFrom: records });
  return { untagged, deleted: [...deletedBlobs, ...deletedSnapshots] };
}
