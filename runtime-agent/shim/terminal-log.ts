import type { Writable } from 'node:stream';
import type { PtyProcess } from '../runtime/pty-process.js';

/**
 * Copies a `-t` container's terminal output into its log at the log's pace: when the log writer is behind
 * (its queue past the high-water mark, e.g. on a slow disk), the terminal is no longer read until it has
 * caught up. The container then blocks on its next write to the full terminal, as it would on a full pipe,
 * instead of the shim queueing its output without bound or dropping any of it.
 */
export function logTerminalOutput(terminal: Pick<PtyProcess, 'onOutput' | 'pause' | 'resume'>, log: Writable): void {
  let paused = false;
  terminal.onOutput((data) => {
    if (log.write(data) || paused) return;
    paused = true;
    terminal.pause();
    log.once('drain', () => {
      paused = false;
      terminal.resume();
    });
  });
}
