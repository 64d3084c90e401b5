import type { BlobStore } from '../storage/blob-store.js';
import type { GcStore } from './gc-store.js';

/**
 * Finishes the deletion of a tombstoned blob: the bytes first, then the record. While the tombstone stands
 * every push treats the blob as absent, so at no moment does a usable record point at missing bytes; a
 * process killed in between leaves the tombstone (listed in gc:tombstones) for the next collector.
 * The caller holds the collector lease. Returns the blob's size, or undefined if it was not tombstoned.
 */
export async function deleteTombstonedBlob(gc: GcStore, store: BlobStore, digest: string): Promise<number | undefined> {
  // Only the holder of the collector lease calls this, and only it can lift a tombstone: once seen, it stands.
  if (!(await gc.isTombstoned(digest))) return undefined;
  await store.deleteBlob(digest);
  return gc.finishBlob(digest);
}
