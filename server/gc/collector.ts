import type { Logger } from '../../platform/logger.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import { GcRun, type GcCounts, type GcOptions } from './gc-run.js';
import type { GcStore } from './gc-store.js';
import { withGcLease, type HeldLease } from './lease.js';
import { dropUnreferencedLinks } from './links.js';
import { markReferencedBlobs } from './mark.js';
import { finishLeftoverTombstones, sweepManifestRecords, sweepOrphanBytes, sweepUnmarkedBlobs } from './sweep.js';
import { deleteUntaggedManifests } from './untagged.js';
import { expireUploads } from './uploads.js';

export interface GcReport extends GcCounts {
  dryRun: boolean;
  startedAt: string;
  durationMs: number;
}

/**
 * Online mark and sweep over the Redis metadata while the registry serves. Phases, in order:
 * finish a dead collector's tombstones; delete untagged manifests (if configured); mark the blobs the
 * remaining manifests name (and the linked manifests); drop repository links nothing names; sweep unmarked
 * blobs and unlinked manifest records; sweep bytes without a record; expire uploads.
 * Safety does not come from a snapshot but from the cutoff: the run's start (Redis time) minus the grace
 * period. Whatever a push touched after it is kept, and every deletion re-checks that in Lua, atomically
 * with the pushes (see metadata/gc-scripts.ts).
 */
export class GarbageCollector {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly gc: GcStore,
    private readonly store: BlobStore,
    private readonly logger: Logger,
    /** Told of every finished run, e.g. to count it in metrics. */
    private readonly onReport: (report: GcReport) => void = () => undefined,
  ) {}

  /** Undefined when another collector holds the lease (this one then does nothing). */
  async run(options: GcOptions): Promise<GcReport | undefined> {
    const report = await withGcLease(this.metadata, (lease) => this.collect(options, lease));
    if (report) this.onReport(report);
    if (report) this.logger.info({ gc: report }, options.dryRun ? 'garbage collection dry run finished' : 'garbage collection finished');
    else this.logger.info('garbage collection skipped: another collector is running');
    return report;
  }

  private async collect(options: GcOptions, lease: HeldLease): Promise<GcReport> {
    const startedAt = new Date();
    const gc = this.gc.fencedBy(lease.fence);
    const cutoff = (await gc.now()) - options.graceMs;
    const run = new GcRun(gc, this.metadata, this.store, options, cutoff, lease);
    await gc.clearScratch();
    try {
      await finishLeftoverTombstones(run);
      if (options.deleteUntagged) await deleteUntaggedManifests(run);
      await markReferencedBlobs(run);
      await dropUnreferencedLinks(run);
      await sweepUnmarkedBlobs(run);
      await sweepManifestRecords(run);
      await sweepOrphanBytes(run);
      await expireUploads(run);
    } finally {
      await gc.clearScratch();
    }
    return { dryRun: options.dryRun, startedAt: startedAt.toISOString(), durationMs: Date.now() - startedAt.getTime(), ...run.counts };
  }
}
