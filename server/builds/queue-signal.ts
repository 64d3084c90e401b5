/**
 * Wakes the workers' long-polls on this registry replica when a job may have become claimable (queued,
 * requeued, or a project's concurrency slot freed), so a waiting claim takes it at once instead of at its next
 * poll. Replicas that did not see the change still find it at their poll.
 */
export class QueueSignal {
  private version = 0;
  private readonly waiters = new Set<() => void>();

  /** A mark to pass to `wait`: a change after it (while a claim was being tried) ends the wait at once. */
  get mark(): number {
    return this.version;
  }

  notify(): void {
    this.version++;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }

  /** Resolves at the first change since `mark`, after `ms`, or when `abort` fires, whichever comes first. */
  wait(mark: number, ms: number, abort: AbortSignal): Promise<void> {
    if (mark !== this.version || abort.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        abort.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      abort.addEventListener('abort', done, { once: true });
    });
  }
}
