import type { RemoveResult } from '../api.js';
import { shortDigest } from '../../oci/digest.js';
import { CodedError } from '../../platform/errors.js';
import { AgentErrors } from '../errors.js';
import type { GarbageCollector } from './garbage-collector.js';
import { matchingImages } from './image-lookup.js';
import type { ImageStore } from './image-store.js';

/**
 * `rmi`: untags an image given by reference or by (a prefix of) its id, then deletes the content only it
 * used, as docker does; content other images share stays. The last reference to an image that a container
 * uses is refused, as docker refuses it without --force.
 */
export async function removeImage(
  nameOrId: string,
  images: ImageStore,
  collector: GarbageCollector,
  containerUsing: (imageId: string) => string | undefined,
): Promise<RemoveResult> {
  const records = await matchingImages(nameOrId, images);
  const removing = new Set(records.map((record) => record.reference));
  const remaining = (await images.list()).filter((record) => !removing.has(record.reference));
  for (const record of records) {
    const container = containerUsing(record.configDigest);
    if (container && !remaining.some((other) => other.configDigest === record.configDigest)) {
      throw new CodedError(
        AgentErrors.IMAGE_IN_USE,
        `conflict: unable to remove repository reference "${nameOrId}" - container ${container.slice(0, 12)} is using its referenced image ${shortDigest(record.configDigest)}`,
      );
    }
  }
  const untagged: string[] = [];
  for (const record of records) {
    if (await images.remove(record.reference)) untagged.push(record.reference);
  }
  const { deletedBlobs, deletedSnapshots } = await collector.collect({ candidatesFrom: records });
  return { untagged, deleted: [...deletedBlobs, ...deletedSnapshots] };
}
