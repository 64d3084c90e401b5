import { LeaseNames } from '../metadata/metadata-store.js';
import type { GcRun } from './gc-run.js';
import type { UploadRecord } from './gc-store.js';

// The upload service's own lease name and a TTL long enough for one session delete and store cleanup.
const UPLOAD_LEASE_MS = 60_000;

/**
 * Deletes upload sessions idle longer than uploadMaxAgeMs, and their bytes in the store (files, or S3
 * segments). A session a request is writing right now holds its upload lease and is skipped; one a chunk
 * moved after it was read (updatedAt changed) is kept by the Lua check.
 */
export async function expireUploads(run: GcRun): Promise<void> {
  const expiredBefore = Date.now() - run.options.uploadMaxAgeMs;
  for await (const uploads of run.paced(run.gc.uploads())) {
    await run.inBatches(
      uploads.filter((upload) => Number(upload.updatedAt) < expiredBefore),
      // Each session has its own upload lease and store cleanup, so they are expired one by one, concurrently.
      async (batch) => {
        const expired = await Promise.all(batch.map((upload) => run.dryRun || expireUpload(run, upload)));
        run.counts.uploadsDeleted += expired.filter(Boolean).length;
      },
    );
  }
}

async function expireUpload(run: GcRun, upload: UploadRecord): Promise<boolean> {
  return holdingUploadLease(run, upload.id, async () => {
    if (!(await run.gc.expireUpload(upload))) return false;
    await run.store.abortUpload({ id: upload.id, offset: 0, storeState: upload.storeState });
    return true;
  });
}

/**
 * Deletes upload bytes in the store that no session owns any more (it expired by its TTL, or a crash lost
 * it) and that nothing wrote for uploadMaxAgeMs. An upload with a session is left to expireUploads; one a
 * request is writing right now holds its upload lease and is skipped.
 */
export async function purgeOrphanedUploadBytes(run: GcRun): Promise<void> {
  const expiredBefore = Date.now() - run.options.uploadMaxAgeMs;
  for await (const uploads of run.paced(run.store.storedUploads())) {
    await run.inBatches(
      uploads.filter((upload) => upload.lastWrittenAt < expiredBefore),
      async (batch) => {
        const purged = await Promise.all(batch.map((upload) => run.dryRun || purgeOrphan(run, upload.id)));
        run.counts.uploadsDeleted += purged.filter(Boolean).length;
      },
    );
  }
}

async function purgeOrphan(run: GcRun, uploadId: string): Promise<boolean> {
  return holdingUploadLease(run, uploadId, async () => {
    if (await run.metadata.getUpload(uploadId)) return false;
    await run.store.abortUpload({ id: uploadId, offset: 0, storeState: '' });
    return true;
  });
}

/** Runs `work` holding the upload's lease; false without running it when a request holds the lease. */
async function holdingUploadLease(run: GcRun, uploadId: string, work: () => Promise<boolean>): Promise<boolean> {
  const lease = await run.metadata.acquireLease(LeaseNames.upload(uploadId), UPLOAD_LEASE_MS);
  if (!lease) return false;
  try {
    return await work();
  } finally {
    await lease.release().catch(() => undefined);
  }
}
