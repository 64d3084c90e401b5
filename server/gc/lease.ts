import type { Lease, MetadataStore } from '../metadata/metadata-store.js';
import { LeaseNames } from '../metadata/metadata-store.js';

/** One collector (or purge) at a time across replicas; one that dies frees the lease after the TTL. */
const GC_LEASE_MS = 10_000;
const GC_LEASE_RENEW_MS = 3_000;

export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
}

/** What a holder of the collector lease checks before each destructive step. */
export interface HeldLease {
  /** Throws LeaseLostError once renewal failed: another collector may be running now. */
  assertHeld(): void;
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
      assertHeld: () => {
        if (lost) throw new LeaseLostError(`the ${job} lease was lost; stopping this run`);
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
