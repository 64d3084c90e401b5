import type { BlobStore } from '../storage/blob-store.js';
import type { GcStore } from './gc-store.js';

/**
 * Finishes the deletion of tombstoned blobs: the bytes first, then the records (one Lua call). While a
 * tombstone stands every push treats the blob as absent, so at no moment does a usable record point at
 * missing bytes; a process killed in between leaves the tombstone (listed in gc:tombstones) for the next
 * collector. The caller holds the collector lease. Returns the sizes of those that were tombstoned.
 */
export async function deleteTombstonedBlobs(gc: GcStore, store: BlobStore, digests: string[]): Promise<number[]> {
  // Only the holder of the collector lease calls this, and only it can lift a tombstone: once seen, it stands.
  const tombstoned = await gc.whichAreTombstoned(digests);
  const doomed = digests.filter((_digest, index) => tombstoned[index]);
  if (doomed.length === 0) return [];
  await Promise.all(doomed.map((digest) => store.deleteBlob(digest)));
  return (await gc.finishBlobs(doomed)).filter((size) => size !== undefined);
}
