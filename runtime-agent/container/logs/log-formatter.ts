import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { LogEntry } from './log-entry.js';

export interface LogOutput {
  stdout: Writable;
  stderr: Writable;
}

/** An entry as `logs` prints it: its text, after its time and a space with `-t`. */
export function formatLogEntry(entry: LogEntry, timestamps: boolean): string {
  return timestamps ? `${entry.time} ${entry.log}` : entry.log;
}

/**
 * Prints entries as `docker logs` does: stdout entries on stdout and stderr entries on stderr, so
 * `logs 2>/dev/null` shows what the container printed on its stdout. Waits when a terminal or pipe is slow
 * rather than buffering a followed log without bound.
 */
export async function printLogEntries(entries: AsyncIterable<LogEntry>, output: LogOutput, timestamps: boolean): Promise<void> {
  for await (const entry of entries) {
    const target = output[entry.stream];
    if (!target.write(formatLogEntry(entry, timestamps))) await once(target, 'drain');
  }
}
