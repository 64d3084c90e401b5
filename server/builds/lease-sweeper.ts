import type { Logger } from '../../platform/logger.js';
import type { BuildQueue } from './build-queue.js';

/**
 * Puts the jobs of gone workers (a lease not renewed in time) back in the queue from the registry's side, so a
 * build does not show "running" on a dead agent until some worker next asks for work. Every registry replica
 * sweeps: the sweep is one script, so two at once never requeue a job twice.
 */
export class LeaseSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly queue: BuildQueue,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private sweep(): void {
    if (this.running) return;
    this.running = this.queue
      .requeueExpired()
      .then((count) => {
        if (count > 0) this.logger.warn({ count }, 'builds whose worker stopped renewing its lease went back to the queue');
      })
      .catch((error: unknown) => this.logger.warn({ err: error }, 'the lease sweep failed; retrying'))
      .finally(() => (this.running = undefined));
  }
}

/** A third of a lease, within 250 ms and 5 s: a dead worker's build is requeued at most that long after its lease ends. */
export function sweepIntervalMs(leaseSeconds: number): number {
  return Math.min(5_000, Math.max(250, (leaseSeconds * 1000) / 3));
}
