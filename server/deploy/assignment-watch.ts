import type { Redis } from 'ioredis';

/**
 * Wakes the nodes' assignment long-polls when the controller changes a node's assignments: its write
 * publishes the node's assignments key on one channel, and this registry replica's single subscriber
 * connection settles the polls waiting on that key (instead of each poll reading Redis every 200 ms).
 */
export class AssignmentWatch {
  private readonly waiting = new Map<string, Set<() => void>>();

  constructor(
    private readonly subscriber: Redis,
    private readonly channel: string,
  ) {}

  async start(): Promise<void> {
    this.subscriber.on('message', (_channel: string, key: string) => {
      for (const wake of [...(this.waiting.get(key) ?? [])]) wake();
    });
    await this.subscriber.subscribe(this.channel);
  }

  /** Settles when `key` is published, or after `ms`. Made before the read it guards, so no change falls between. */
  changed(key: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.waiting.get(key) ?? new Set<() => void>();
      this.waiting.set(key, waiters);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiting.get(key) === waiters) this.waiting.delete(key);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
    });
  }

  stop(): void {
    this.subscriber.disconnect();
  }
}
