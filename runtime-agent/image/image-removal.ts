import type { RemoveResult } from '../api.js';
import { parseReference, ReferenceError } from '../reference.js';
import type { GarbageCollector } from './garbage-collector.js';
import type { ImageRecord, ImageStore } from './image-store.js';

export class ImageNotFoundError extends Error {}

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

async function matchingImages(nameOrId: string, images: ImageStore): Promise<ImageRecord[]> {
  const all = await images.list();
  const byReference = referenceKey(nameOrId);
  const exact = all.filter((record) => record.reference === byReference);
  if (exact.length > 0) return exact;
  const idPrefix = /^(sha256:)?([a-f0-9]{4,64})$/.exec(nameOrId)?.[2];
  const byId = idPrefix ? all.filter((record) => record.configDigest.slice('sha256:'.length).startsWith(idPrefix)) : [];
  if (byId.length === 0) throw new ImageNotFoundError(`No such image: ${nameOrId}`);
  if (new Set(byId.map((record) => record.configDigest)).size > 1) throw new ImageNotFoundError(`${nameOrId} matches several images`);
  return byId;
}

function referenceKey(text: string): string | undefined {
  try {
    const reference = parseReference(text);
    const name = `${reference.registry}/${reference.repository}`;
    return reference.digest ? `${name}@${reference.digest}` : `${name}:${reference.tag}`;
  } catch (error) {
    if (error instanceof ReferenceError) return undefined;
    throw error;
  }
}
