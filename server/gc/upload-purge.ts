import type { Logger } from '../../platform/logger.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import { GcRun, type GcOptions } from './gc-run.js';
import type { GcStore } from './gc-store.js';
import { withExclusiveLease } from './lease.js';
import { expireUploads, purgeOrphanedUploadBytes } from './uploads.js';

// Not the collector's lease: a purge and a collection may run at the same time (both take each upload's lease).
const PURGE_LEASE = 'upload-purge';

export interface UploadPurgeReport {
  uploadsDeleted: number;
  durationMs: number;
}

/**
 * Reclaims abandoned uploads, one replica at a time: sessions idle longer than the age (those without a
 * TTL, e.g. opened before TTLs existed) with their bytes, then bytes in the store whose session is gone.
 * It paces itself like the collector (`options`' batch size and rest ratio).
 */
export class UploadPurger {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly gc: GcStore,
    private readonly store: BlobStore,
    private readonly options: GcOptions,
    private readonly logger: Logger,
  ) {}

  /** Undefined when another replica is purging. */
  async run(): Promise<UploadPurgeReport | undefined> {
    const startedAt = Date.now();
    const report = await withExclusiveLease(this.metadata, PURGE_LEASE, 'upload purge', async (lease) => {
      const run = new GcRun(this.gc.fencedBy(lease.fence), this.metadata, this.store, this.options, 0, lease);
      await expireUploads(run);
      await purgeOrphanedUploadBytes(run);
      return { uploadsDeleted: run.counts.uploadsDeleted, durationMs: Date.now() - startedAt };
    });
    if (report) this.logger.info({ uploadPurge: report }, 'upload purge finished');
    return report;
  }
}
