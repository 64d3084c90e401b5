/** A pull's claim on content it is about to use. */
export interface Lease {
  /** Adds keys (blob digests, chain ids) to the lease; waits while a garbage collection runs. */
  add(keys: readonly string[]): Promise<void>;
  release(): void;
}

/**
 * Keeps content that pulls in progress use (and no image record references yet) from being collected.
 * Taking a lease waits for a running collection, and a collection waits for nothing but runs one at a
 * time: so a collection never deletes what a pull has decided to reuse.
 */
export class Leases {
  private readonly held = new Map<string, number>();
  private collection: Promise<unknown> = Promise.resolve();

  async acquire(keys: readonly string[] = []): Promise<Lease> {
    const mine: string[] = [];
    const add = async (more: readonly string[]) => {
      await this.collection;
      for (const key of more) {
        this.held.set(key, (this.held.get(key) ?? 0) + 1);
        mine.push(key);
      }
    };
    await add(keys);
    return {
      add,
      release: () => {
        for (const key of mine.splice(0)) {
          const count = (this.held.get(key) ?? 1) - 1;
          if (count === 0) this.held.delete(key);
          else this.held.set(key, count);
        }
      },
    };
  }

  isLeased(key: string): boolean {
    return this.held.has(key);
  }

  /** Runs a collection exclusively with respect to new leases and other collections. */
  collect<T>(work: () => Promise<T>): Promise<T> {
    const run = this.collection.then(work);
    this.collection = run.catch(() => undefined);
    return run;
  }
}
