import { LogChangeWaiter } from './log-change-waiter.js';
import { openNextLogFile, type LogCursor } from './log-cursor.js';
import { parseLogEntry, type LogEntry } from './log-entry.js';
import { openAtLastLines } from './log-tail.js';
import { parseRfc3339Nano } from './log-time.js';

export interface ReadLogsOptions {
  /** Only the last N lines (an entry is a line); all when undefined. */
  tail?: number;
  /** Only entries at or after this time. */
  since?: Date;
  /** Keep yielding entries as they are written, across rotations, until `signal` or `stopWhen`. */
  follow?: boolean;
  /** Ends the reading at once. */
  signal?: AbortSignal;
  /**
   * Settles when nothing more will be written (the container exited and its writer closed): a follower then
   * yields what is left in the files and ends.
   */
  stopWhen?: Promise<unknown>;
}

/**
 * The entries of the json-file log in `directory`, oldest first, across rotated files. The directory must
 * exist; a log with no file yet is empty (and followed until its file appears).
 */
export async function* readLogs(directory: string, options: ReadLogsOptions = {}): AsyncGenerator<LogEntry> {
  const { signal } = options;
  const waiter = options.follow ? new LogChangeWaiter(directory, signal, options.stopWhen) : undefined;
  const keep = sinceFilter(options.since);
  let cursor: LogCursor | undefined;
  try {
    if (options.tail !== undefined) cursor = await openAtLastLines(directory, options.tail);
    while (!signal?.aborted) {
      // Decided before draining: what was written before the stop is all read by the drain below.
      const lastPass = waiter?.stopped ?? true;
      cursor ??= await openNextLogFile(directory, undefined);
      if (cursor) {
        // Known to be rotated before draining, the file is complete once drained.
        const live = await cursor.isLive(directory);
        for await (const line of cursor.lines()) {
          if (signal?.aborted) return;
          const entry = parseLogEntry(line);
          if (entry && keep(entry)) yield entry;
        }
        // Closed only once the next file is open: while open, no new file can take over its inode.
        const next = live ? undefined : await openNextLogFile(directory, cursor.inode);
        if (next) {
          await cursor.close();
          cursor = next;
          continue;
        }
      }
      if (lastPass) return;
      await waiter!.wait();
    }
  } finally {
    await cursor?.close();
    waiter?.close();
  }
}

function sinceFilter(since: Date | undefined): (entry: LogEntry) => boolean {
  if (since === undefined) return () => true;
  const sinceNanos = BigInt(since.getTime()) * 1_000_000n;
  return (entry) => parseRfc3339Nano(entry.time) >= sinceNanos;
}
