import type { Logger } from 'pino';
import type { GarbageCollector } from './collector.js';
import type { GcOptions } from './gc-run.js';

/**
 * Runs the collector every `intervalMs` (measured from the end of one run to the start of the next, so
 * slow runs never pile up). Every replica may schedule: the lease lets one run at a time and the others
 * skip. Returns a function that stops the schedule and waits for a run in progress.
 */
export function scheduleGc(collector: GarbageCollector, options: GcOptions, intervalMs: number, logger: Logger): () => Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    running = collector
      .run(options)
      .then(
        () => undefined,
        (error: unknown) => logger.error({ err: error }, 'scheduled garbage collection failed'),
      )
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, intervalMs);
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
