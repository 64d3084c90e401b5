import { deleteTombstonedBlobs } from './blob-deletion.js';
import type { GcRun } from './gc-run.js';

/** Finishes the deletions a collector that died left half done (tombstoned records, maybe their bytes). */
export async function finishLeftoverTombstones(run: GcRun): Promise<void> {
  if (run.dryRun) return;
  for await (const digests of run.gc.tombstones()) await run.inBatches(digests, (batch) => finishDeletions(run, batch));
}

/**
 * Deletes every blob not in gc:mark whose record was untouched since the cutoff. Each goes in three steps:
 * a Lua tombstone that re-checks mark and touchedAt atomically with the registry's pushes (after it, pushes
 * see the blob as absent), the bytes, then the record.
 */
export async function sweepUnmarkedBlobs(run: GcRun): Promise<void> {
  for await (const digests of run.paced(run.gc.blobs())) {
    const marked = await run.gc.whichAreMembers('mark', digests);
    await run.inBatches(
      digests.filter((_digest, index) => !marked[index]),
      async (batch) => {
        await deleteTombstoned(run, batch, await run.gc.tombstoneBlobs(batch, run.cutoff, run.dryRun));
      },
    );
  }
}

/**
 * Deletes bytes the store holds without any record (a commit that crashed between moving them to their
 * address and recording them), once last written before the cutoff: a commit stamps its bytes' time, so
 * one in progress is never taken. Goes through a tombstone like any other blob.
 */
export async function sweepOrphanBytes(run: GcRun): Promise<void> {
  for await (const blobs of run.paced(run.store.listBlobs())) {
    await run.inBatches(
      blobs.filter((blob) => blob.modifiedAt < run.cutoff),
      async (batch) => {
        const digests = batch.map((blob) => blob.digest);
        await deleteTombstoned(run, digests, await run.gc.tombstoneOrphans(batch, run.dryRun));
      },
    );
  }
}

/** `sizes[i]`: digests[i] was tombstoned (dry: would be) with that size. */
async function deleteTombstoned(run: GcRun, digests: string[], sizes: (number | undefined)[]): Promise<void> {
  if (run.dryRun)
    countBlobs(
      run,
      sizes.filter((size) => size !== undefined),
    );
  else
    await finishDeletions(
      run,
      digests.filter((_digest, index) => sizes[index] !== undefined),
    );
}

async function finishDeletions(run: GcRun, digests: string[]): Promise<void> {
  countBlobs(run, await deleteTombstonedBlobs(run.gc, run.store, digests));
}

function countBlobs(run: GcRun, sizes: number[]): void {
  run.counts.blobsDeleted += sizes.length;
  for (const size of sizes) run.counts.bytesDeleted += size;
}

/** Deletes the manifest records no repository linked at the mark and nothing wrote or named since the cutoff. */
export async function sweepManifestRecords(run: GcRun): Promise<void> {
  for await (const digests of run.paced(run.gc.manifestRecords())) {
    const marked = await run.gc.whichAreMembers('manifest-mark', digests);
    await run.inBatches(
      digests.filter((_digest, index) => !marked[index]),
      async (batch) => void (run.counts.manifestRecordsDeleted += await run.gc.deleteManifestRecords(batch, run.cutoff, run.dryRun)),
    );
  }
}
