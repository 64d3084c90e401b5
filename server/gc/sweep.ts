import { deleteTombstonedBlob } from './blob-deletion.js';
import type { GcRun } from './gc-run.js';

/** Finishes the deletions a collector that died left half done (tombstoned records, maybe their bytes). */
export async function finishLeftoverTombstones(run: GcRun): Promise<void> {
  if (run.dryRun) return;
  for await (const digests of run.gc.tombstones()) await run.inBatches(digests, (digest) => finishDeletion(run, digest));
}

/**
 * Deletes every blob not in gc:mark whose record was untouched since the cutoff. Each goes in three steps:
 * a Lua tombstone that re-checks mark and touchedAt atomically with the registry's pushes (after it, pushes
 * see the blob as absent), the bytes, then the record.
 */
export async function sweepUnmarkedBlobs(run: GcRun): Promise<void> {
  for await (const digests of run.gc.blobs()) {
    const marked = await run.gc.whichAreMembers('gc:mark', digests);
    await run.inBatches(
      digests.filter((_digest, index) => !marked[index]),
      async (digest) => {
        const size = await run.gc.tombstoneBlob(digest, run.cutoff, run.dryRun);
        if (size === undefined) return;
        if (run.dryRun) countBlob(run, size);
        else await finishDeletion(run, digest);
      },
    );
  }
}

async function finishDeletion(run: GcRun, digest: string): Promise<void> {
  const size = await deleteTombstonedBlob(run.gc, run.store, digest);
  if (size !== undefined) countBlob(run, size);
}

function countBlob(run: GcRun, size: number): void {
  run.counts.blobsDeleted++;
  run.counts.bytesDeleted += size;
}
