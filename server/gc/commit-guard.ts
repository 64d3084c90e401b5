import { setTimeout as sleep } from 'node:timers/promises';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { Lease, MetadataStore } from '../metadata/metadata-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import { deleteTombstonedBlobs } from './blob-deletion.js';
import type { GcStore } from './gc-store.js';
import { withGcLease } from './lease.js';

// A live collector finishes a tombstone within one store delete; a dead one's tombstones are finished here.
const POLL_MS = 50;
const MAX_WAIT_MS = 30_000;

/**
 * Keeps an upload from committing its bytes into a digest the garbage collector is deleting: the deletion
 * could remove them right after the commit wrote them, leaving a record without bytes. Instead the upload waits until the deletion is over (the collector's, or, when no
 * collector holds the lease, one it finishes itself), and then writes its bytes anew.
 */
export class BlobCommitGuard {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly gc: GcStore,
    private readonly store: BlobStore,
  ) {}

  /**
   * Resolves once the digest may be committed: 'existing' (now protected from collection) or 'new', with the
   * upload's lease renewed in the same step; 'lease-lost' when the lease is no longer held.
   */
  async prepare(digest: string, uploadLease: Lease): Promise<'new' | 'existing' | 'lease-lost'> {
    const deadline = Date.now() + MAX_WAIT_MS;
    for (;;) {
      const state = await this.metadata.prepareBlobCommit(digest, uploadLease);
      if (state !== 'deleting') return state;
      if (Date.now() > deadline) {
        throw new CodedError(DistributionErrors.UNAVAILABLE, `blob ${digest} is being garbage collected; retry the upload`);
      }
      const finished = await withGcLease(this.metadata, (gcLease) =>
        deleteTombstonedBlobs(this.gc.fencedBy(gcLease.fence), this.store, [digest]),
      );
      if (!finished?.length) await sleep(POLL_MS);
    }
  }
}
