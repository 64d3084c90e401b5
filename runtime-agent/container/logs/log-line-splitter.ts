/**
 * Cuts a byte stream into log entries: one per line, the '\n' kept. A line with more than
 * MAX_ENTRY_TEXT_BYTES of text becomes several entries, all but the last without a newline, as docker's
 * json-file driver does with its 16 KiB buffer: a process printing endlessly without a newline cannot make the
 * writer hold an unbounded line in memory, and joining the entries' text gives the line back.
 */
export const MAX_ENTRY_TEXT_BYTES = 16 * 1024;

const NEWLINE = 0x0a;

export class LineSplitter {
  /** Text of the line in progress, copied: callers may reuse their buffers once a write is done. */
  private partial: Buffer = Buffer.alloc(0);

  /** The entries this chunk completes, in order. */
  push(chunk: Buffer): Buffer[] {
    const entries: Buffer[] = [];
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, start);
      const end = newline === -1 ? chunk.length : newline + 1;
      this.append(chunk.subarray(start, end), entries);
      if (newline !== -1) entries.push(this.take());
      start = end;
    }
    return entries;
  }

  /** The unterminated rest, when the stream ends. */
  flush(): Buffer | undefined {
    return this.partial.length > 0 ? this.take() : undefined;
  }

  /** Adds text (possibly ending in its newline), splitting off full-size entries. */
  private append(text: Buffer, entries: Buffer[]): void {
    let rest = Buffer.concat([this.partial, text]);
    while (textLength(rest) > MAX_ENTRY_TEXT_BYTES) {
      const cut = utf8Boundary(rest, MAX_ENTRY_TEXT_BYTES);
      entries.push(rest.subarray(0, cut));
      rest = rest.subarray(cut);
    }
    this.partial = rest;
  }

  private take(): Buffer {
    const entry = this.partial;
    this.partial = Buffer.alloc(0);
    return entry;
  }
}

/** A line's newline does not count against the limit: a line of exactly 16 KiB stays one entry. */
function textLength(text: Buffer): number {
  return text.at(-1) === NEWLINE ? text.length - 1 : text.length;
}

/** The cut at or just before `limit` that does not split a UTF-8 character (for valid UTF-8). */
function utf8Boundary(bytes: Buffer, limit: number): number {
  for (let cut = limit; cut > limit - 4 && cut > 0; cut--) {
    if (((bytes[cut] ?? 0) & 0xc0) !== 0x80) return cut;
  }
  return limit;
}
