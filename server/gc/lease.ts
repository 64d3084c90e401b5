import type { Lease, LeaseFence, MetadataStore } from '../metadata/metadata-store.js';
import { LeaseNames } from '../metadata/metadata-store.js';

/** One collector (or purge) at a time across replicas; one that dies frees the lease after the TTL. */
const GC_LEASE_MS = 10_000;
const GC_LEASE_RENEW_MS = 3_000;

export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
}

/**
 * What a holder of the collector lease checks before each destructive step. The check is made in Redis, not
 * on a local flag: after a failover that lost the lease (it had not reached the replica), or once another
 * process took it, the next check fails. The GC store's writes are fenced too (GcStore.fencedBy): each one
 * checks the holder atomically with itself, so a holder that lost its lease cannot act on stale state.
 */
export interface HeldLease {
  readonly fence: LeaseFence;
  /** Extends the lease in Redis; throws LeaseLostError when this process no longer holds it. */
  assertHeld(): Promise<void>;
}

/**
 * Runs `work` holding the collector lease, renewed in the background; undefined (without running it) when
 * another process holds the lease.
 */
export function withGcLease<T>(metadata: MetadataStore, work: (lease: HeldLease) => Promise<T>): Promise<T | undefined> {
  return withExclusiveLease(metadata, LeaseNames.gc, 'garbage collection', work);
}

/** Like withGcLease, for another job that one replica at a time runs (e.g. the upload purge). */
export async function withExclusiveLease<T>(
  metadata: MetadataStore,
  name: string,
  job: string,
  work: (lease: HeldLease) => Promise<T>,
): Promise<T | undefined> {
  const lease = await metadata.acquireLease(name, GC_LEASE_MS);
  if (!lease) return undefined;
  let lost = false;
  const renewal = setInterval(() => void renewOrMarkLost(lease, () => (lost = true)), GC_LEASE_RENEW_MS);
  try {
    return await work({
      fence: lease.fence,
      assertHeld: async () => {
        if (lost || !(await lease.renew().catch(() => false))) {
          lost = true;
          throw new LeaseLostError(`the ${job} lease was lost; stopping this run`);
        }
      },
    });
  } finally {
    clearInterval(renewal);
    await lease.release().catch(() => undefined);
  }
}

async function renewOrMarkLost(lease: Lease, markLost: () => void): Promise<void> {
  if (!(await lease.renew().catch(() => false))) markLost();
}
