import type { Lease, MetadataStore } from '../metadata/metadata-store.js';

/** One collector at a time across replicas; a collector that dies frees the registry after the TTL. */
const GC_LEASE = 'gc';
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
export async function withGcLease<T>(metadata: MetadataStore, work: (lease: HeldLease) => Promise<T>): Promise<T | undefined> {
  const lease = await metadata.acquireLease(GC_LEASE, GC_LEASE_MS);
  if (!lease) return undefined;
  let lost = false;
  const renewal = setInterval(() => void renewOrMarkLost(lease, () => (lost = true)), GC_LEASE_RENEW_MS);
  try {
    return await work({
      assertHeld: () => {
        if (lost) throw new LeaseLostError('the garbage collection lease was lost; stopping this run');
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
