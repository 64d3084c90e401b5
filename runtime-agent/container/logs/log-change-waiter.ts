import { watch, type FSWatcher } from 'node:fs';

/** inotify wakes a follower at once; the poll is a safety net for changes it does not report. */
const POLL_INTERVAL_MS = 500;

/**
 * Lets a log follower sleep until something happens in the log directory (a write, a rotation), it is
 * aborted, or the container is known to have stopped.
 */
export class LogChangeWaiter {
  private changed = false;
  private stopRequested = false;
  private wake: (() => void) | undefined;
  private readonly watcher: FSWatcher;
  private readonly notify = (): void => {
    this.changed = true;
    this.wake?.();
  };

  constructor(
    directory: string,
    private readonly signal: AbortSignal | undefined,
    stopWhen: Promise<unknown> | undefined,
  ) {
    this.watcher = watch(directory, this.notify).on('error', () => {});
    const stop = (): void => {
      this.stopRequested = true;
      this.notify();
    };
    stopWhen?.then(stop, stop);
    signal?.addEventListener('abort', this.notify);
  }

  /** True once `stopWhen` has settled: the follower drains what is written and ends. */
  get stopped(): boolean {
    return this.stopRequested;
  }

  async wait(): Promise<void> {
    if (!this.changed && !this.signal?.aborted) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, POLL_INTERVAL_MS);
      });
      clearTimeout(timer);
      this.wake = undefined;
    }
    this.changed = false;
  }

  close(): void {
    this.watcher.close();
    this.signal?.removeEventListener('abort', this.notify);
    this.wake?.();
  }
}
