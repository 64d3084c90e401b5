import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { GcStore } from './gc-store.js';
import type { HeldLease } from './lease.js';

export interface GcOptions {
  dryRun: boolean;
  /** Nothing pushed, mounted, named or read within this long before the run started is deleted. */
  graceMs: number;
  uploadMaxAgeMs: number;
  deleteUntagged: boolean;
  /** Deletions in flight at once; a checkpoint (lease check, pause) follows each batch. */
  batchSize: number;
  /** Pause after each batch of deletions, to leave Redis and the store to clients on a busy registry. */
  batchPauseMs: number;
}

/** The run options the `gc` configuration section gives. */
export function gcOptionsFromConfig(config: Config['gc'], dryRun: boolean): GcOptions {
  return {
    dryRun,
    graceMs: config.graceSeconds * 1000,
    uploadMaxAgeMs: config.uploadMaxAgeSeconds * 1000,
    deleteUntagged: config.deleteUntagged,
    batchSize: config.batchSize,
    batchPauseMs: config.batchPauseMs,
  };
}

export interface GcCounts {
  manifestsDeleted: number;
  blobsDeleted: number;
  bytesDeleted: number;
  linksDeleted: number;
  uploadsDeleted: number;
}

/** One collection in progress: what every phase reads and the counts it adds to. */
export class GcRun {
  readonly counts: GcCounts = { manifestsDeleted: 0, blobsDeleted: 0, bytesDeleted: 0, linksDeleted: 0, uploadsDeleted: 0 };

  constructor(
    readonly gc: GcStore,
    readonly metadata: MetadataStore,
    readonly store: BlobStore,
    readonly options: GcOptions,
    /** Redis time in ms: anything touched at or after it is kept. */
    readonly cutoff: number,
    private readonly lease: HeldLease,
  ) {}

  get dryRun(): boolean {
    return this.options.dryRun;
  }

  /**
   * Runs `work` on `items` in batches of batchSize, each batch concurrently, with a checkpoint before each:
   * the lease must still be held (else another collector may be running) and the configured pause is taken.
   */
  async inBatches<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
    for (let start = 0; start < items.length; start += this.options.batchSize) {
      this.lease.assertHeld();
      await Promise.all(items.slice(start, start + this.options.batchSize).map(work));
      if (this.options.batchPauseMs > 0) await sleep(this.options.batchPauseMs);
    }
  }
}
