import type { Logger } from '../../platform/logger.js';
import type { GarbageCollector } from './collector.js';
import type { GcOptions } from './gc-run.js';

/**
 * Runs the collector every `intervalMs` (measured from the end of one run to the start of the next, so
 * slow runs never pile up). Every replica may schedule: the lease lets one run at a time and the others
 * skip. Returns a function that stops the schedule and waits for a run in progress.
 */
export function scheduleGc(collector: GarbageCollector, options: GcOptions, intervalMs: number, logger: Logger): () => Promise<void> {
  return scheduleRepeating(
    () => collector.run(options),
    intervalMs,
    intervalMs,
    (error) => logger.error({ err: error }, 'scheduled garbage collection failed'),
  );
}

/**
 * Runs `job` after `firstDelayMs`, then `intervalMs` after the end of each run. Returns a function that
 * stops the schedule and waits for a run in progress.
 */
export function scheduleRepeating(
  job: () => Promise<unknown>,
  firstDelayMs: number,
  intervalMs: number,
  onError: (error: unknown) => void,
): () => Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    running = job()
      .then(() => undefined, onError)
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, firstDelayMs);
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
