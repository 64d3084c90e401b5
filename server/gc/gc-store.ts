import type { LeaseFence } from '../metadata/metadata-store.js';
import type { StoredBlob } from '../storage/blob-store.js';

/**
 * The collector's scratch sets, emptied by every run: mark (blobs named by a kept manifest), live (manifests
 * reachable from a tag), doomed (what a dry run would delete), repo-mark (blobs named by the manifests of the
 * repository whose links are swept), manifest-mark (manifests some repository links).
 */
export type ScratchSet = 'mark' | 'live' | 'doomed' | 'repo-mark' | 'manifest-mark';

export const SCRATCH_SETS: readonly ScratchSet[] = ['mark', 'live', 'doomed', 'repo-mark', 'manifest-mark'];

/** What a manifest record names. */
export interface ManifestReferences {
  blobs: string[];
  manifests: string[];
  subject?: string;
}

export interface UploadRecord {
  id: string;
  repository: string;
  storeState: string;
  updatedAt: string;
}

/**
 * The garbage collector's view of the metadata (implemented on Redis by metadata/redis-gc-store.ts): every
 * listing comes page by page, so nothing here loads a whole set; every deletion re-checks, as it runs, that
 * its target is still garbage (metadata/gc-scripts.ts).
 */
export interface GcStore {
  /**
   * The same store whose writes (scripts, scratch clears, dequeues) each first check, atomically, that
   * `fence` still holds its lease, and fail with LeaseLostError otherwise.
   */
  fencedBy(fence: LeaseFence): GcStore;

  /** The metadata's clock in ms, the clock every touchedAt is stamped with. */
  now(): Promise<number>;

  /** Empties every scratch set and the work queue: a run starts from nothing. */
  clearScratch(): Promise<void>;
  clear(set: ScratchSet): Promise<void>;
  add(set: ScratchSet, members: string[]): Promise<void>;
  /** Adds members; returns those that were not there yet. */
  addNew(set: ScratchSet, members: string[]): Promise<string[]>;
  whichAreMembers(set: ScratchSet, members: string[]): Promise<boolean[]>;
  /** The queue of '<repo>@<digest>' manifests whose references are still to be followed. */
  enqueue(items: string[]): Promise<void>;
  dequeue(count: number): Promise<string[]>;

  /** Repositories with at least one manifest. */
  repositories(): AsyncIterable<string[]>;
  /** Repositories with blob links, whether or not they have manifests. */
  linkedRepositories(): AsyncIterable<string[]>;
  manifestsOf(repository: string): AsyncIterable<string[]>;
  linksOf(repository: string): AsyncIterable<string[]>;
  /** The manifest digests a repository's tags point at (repeats possible). */
  taggedManifests(repository: string): AsyncIterable<string[]>;
  /** Digests of the manifests whose subject is `digest` in the repository. */
  referrersOf(repository: string, digest: string): AsyncIterable<string[]>;
  references(digests: string[]): Promise<ManifestReferences[]>;
  /** Digests of every blob record. */
  blobs(): AsyncIterable<string[]>;
  /** Digests of every manifest record, linked or not. */
  manifestRecords(): AsyncIterable<string[]>;
  /** Digests of the blobs whose deletion was started (by this collector or one that died). */
  tombstones(): AsyncIterable<string[]>;
  uploads(): AsyncIterable<UploadRecord[]>;

  /**
   * Tombstones the unmarked blobs untouched since the cutoff; per digest its size if it is (or, dry, would
   * be) deleted.
   */
  tombstoneBlobs(digests: string[], cutoff: number, dryRun: boolean): Promise<(number | undefined)[]>;
  /** Tombstones the stored blobs that have no record; per blob its size if it is (or, dry, would be) deleted. */
  tombstoneOrphans(blobs: StoredBlob[], dryRun: boolean): Promise<(number | undefined)[]>;
  whichAreTombstoned(digests: string[]): Promise<boolean[]>;
  /** Drops tombstoned records once their bytes are gone; per digest its size, or undefined if it was not tombstoned. */
  finishBlobs(digests: string[]): Promise<(number | undefined)[]>;
  /** How many of the repository's untagged manifests were (or, dry, would be) deleted. */
  deleteUntaggedManifests(repository: string, digests: string[], cutoff: number, dryRun: boolean): Promise<number>;
  /** How many of the manifest records were (or, dry, would be) deleted. */
  deleteManifestRecords(digests: string[], cutoff: number, dryRun: boolean): Promise<number>;
  /** How many of the repository's links were (or, dry, would be) dropped. */
  unlinkBlobs(repository: string, digests: string[], cutoff: number, dryRun: boolean): Promise<number>;
  /** Deletes an expired upload session unless a chunk moved it since it was read. */
  expireUpload(upload: UploadRecord): Promise<boolean>;
}
