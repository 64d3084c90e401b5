/** One line of a json-file log, as docker writes it: `{"log":"text\n","stream":"stdout","time":"<RFC 3339>"}`. */

export type LogStream = 'stdout' | 'stderr';

export interface LogEntry {
  stream: LogStream;
  /** RFC 3339 with nanoseconds, UTC. */
  time: string;
  /** The text, with its '\n' unless the line was split (longer than 16 KiB) or unterminated at the end. */
  log: string;
}

/** Field order as docker's, so tools reading docker's files read these. */
export function serializeLogEntry(entry: LogEntry): Buffer {
  return Buffer.from(`${JSON.stringify({ log: entry.log, stream: entry.stream, time: entry.time })}\n`);
}

/**
 * The entry on a line (without its '\n'), or undefined for a line that is not one: a shim killed in the middle
 * of a write leaves a fragment, and one damaged line must not end a `logs`.
 */
export function parseLogEntry(line: Buffer): LogEntry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { log, stream, time } = value as Record<string, unknown>;
  if (typeof log !== 'string' || typeof time !== 'string' || (stream !== 'stdout' && stream !== 'stderr')) return undefined;
  return { stream, time, log };
}
