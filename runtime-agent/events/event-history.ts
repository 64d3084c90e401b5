import { createReadStream } from 'node:fs';
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { writeTextAtomic } from '../support/json-file.js';
import { eventLine, parseEventLine, type EventMessage } from './event-message.js';

/**
 * The last `capacity` events, in memory and in an append-only NDJSON file, so `events --since` replays
 * them after a daemon restart too. The file is rewritten with only the kept events once it holds twice
 * as many, so it stays bounded.
 */
export class EventHistory {
  private events: EventMessage[] = [];
  private linesInFile = 0;
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private readonly capacity: number,
    private readonly onWriteError: (error: unknown) => void,
  ) {}

  static async open(file: string, capacity: number, onWriteError: (error: unknown) => void): Promise<EventHistory> {
    const history = new EventHistory(file, capacity, onWriteError);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await history.load();
    return history;
  }

  /** Events in time order, `since`/`until` as unix nanoseconds (inclusive); either may be absent. */
  between(since: bigint | undefined, until: bigint | undefined): EventMessage[] {
    return this.events.filter((event) => {
      const time = BigInt(event.timeNano);
      return (since === undefined || time >= since) && (until === undefined || time <= until);
    });
  }

  add(message: EventMessage): void {
    this.events.push(message);
    if (this.events.length > this.capacity) this.events.splice(0, this.events.length - this.capacity);
    this.writing = this.writing.then(() => this.write(message)).catch(this.onWriteError);
  }

  /** Settles once every added event is on disk. */
  flushed(): Promise<void> {
    return this.writing;
  }

  private async write(message: EventMessage): Promise<void> {
    if (this.linesInFile >= 2 * this.capacity) {
      await writeTextAtomic(this.file, this.events.map((event) => `${eventLine(event)}\n`).join(''));
      this.linesInFile = this.events.length;
      return;
    }
    await appendFile(this.file, `${eventLine(message)}\n`, { mode: 0o600 });
    this.linesInFile++;
  }

  /** Reads the file line by line; a torn last line (a crash mid-append) is skipped. */
  private async load(): Promise<void> {
    const input = createReadStream(this.file);
    const opened = await new Promise<boolean>((resolve, reject) => {
      input.once('open', () => resolve(true));
      input.once('error', (error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? resolve(false) : reject(error)));
    });
    if (!opened) return;
    for await (const line of createInterface({ input, crlfDelay: Infinity })) {
      this.linesInFile++;
      const message = parseOrSkip(line);
      if (!message) continue;
      this.events.push(message);
      if (this.events.length > this.capacity) this.events.shift();
    }
  }
}

function parseOrSkip(line: string): EventMessage | undefined {
  try {
    return line.trim() === '' ? undefined : parseEventLine(line);
  } catch {
    return undefined;
  }
}
