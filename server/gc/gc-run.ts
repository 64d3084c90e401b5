import { performance } from 'node:perf_hooks';
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
  /** Deletion candidates per Lua call (and store deletions in flight); a checkpoint (lease check, pause) follows each batch. */
  batchSize: number;
  /**
   * Pause after each batch that deleted something (a dry run: would have), to leave Redis and the store to
   * clients on a busy registry. A batch whose candidates all turned out kept cost one Lua call: the rest covers it.
   */
  batchPauseMs: number;
  /**
   * Rest per unit of work: after each page or batch the collector pauses this many times as long as it took.
   * A busy Redis or CPU makes the steps slower and so the pauses longer: the collector backs off under load.
   */
  restRatio: number;
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
    restRatio: config.restRatio,
  };
}

export interface GcCounts {
  manifestsDeleted: number;
  /** Records of manifests no repository links, left from before their last unlink deleted them. */
  manifestRecordsDeleted: number;
  blobsDeleted: number;
  bytesDeleted: number;
  linksDeleted: number;
  uploadsDeleted: number;
}

/** One collection in progress: what every phase reads and the counts it adds to. */
export class GcRun {
  readonly counts: GcCounts = {
    manifestsDeleted: 0,
    manifestRecordsDeleted: 0,
    blobsDeleted: 0,
    bytesDeleted: 0,
    linksDeleted: 0,
    uploadsDeleted: 0,
  };

  constructor(
    readonly gc: GcStore,
    readonly metadata: MetadataStore,
    readonly store: BlobStore,
    readonly options: GcOptions,
    /** Redis time in ms: anything touched at or after it is kept. */
    readonly cutoff: number,
    private readonly lease: HeldLease,
  ) {}

  private workingSince = performance.now();

  get dryRun(): boolean {
    return this.options.dryRun;
  }

  /** Pages of a cursor iteration, with a checkpoint after each. */
  async *paced<T>(pages: AsyncIterable<T[]>): AsyncIterable<T[]> {
    for await (const page of pages) {
      yield page;
      await this.checkpoint();
    }
  }

  /**
   * Runs `work` on `items` a batch of batchSize at a time (one Lua call checks a whole batch), with a checkpoint
   * after each; the pause only after a batch that deleted something.
   */
  async inBatches<T>(items: T[], work: (batch: T[]) => Promise<void>): Promise<void> {
    for (let start = 0; start < items.length; start += this.options.batchSize) {
      await this.lease.assertHeld();
      const deletedBefore = this.deletions();
      await work(items.slice(start, start + this.options.batchSize));
      await this.checkpoint(this.deletions() > deletedBefore ? this.options.batchPauseMs : 0);
    }
  }

  /** Items deleted so far, of every kind. */
  private deletions(): number {
    const { manifestsDeleted, manifestRecordsDeleted, blobsDeleted, linksDeleted, uploadsDeleted } = this.counts;
    return manifestsDeleted + manifestRecordsDeleted + blobsDeleted + linksDeleted + uploadsDeleted;
  }

  /**
   * The lease must still be held (else another collector may be running), then the collector rests in
   * proportion to the work since the last checkpoint, plus `pauseMs`.
   */
  private async checkpoint(pauseMs = 0): Promise<void> {
    await this.lease.assertHeld();
    const rest = pauseMs + (performance.now() - this.workingSince) * this.options.restRatio;
    if (rest >= 1) await sleep(rest);
    this.workingSince = performance.now();
  }
}
