import { mkdir, open, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { serializeLogEntry, type LogStream } from './log-entry.js';
import { logFilePath, rotateLogFiles } from './log-files.js';
import { LineSplitter } from './log-line-splitter.js';
import { OrderedSink } from './ordered-sink.js';
import { formatRfc3339Nano, nowNanos } from './log-time.js';

export interface LogRotation {
  /** The live file is rotated before an entry would take it past this size. */
  maxSizeBytes: number;
  /** Files kept, the live one included; the oldest is dropped beyond that. */
  maxFiles: number;
}

/**
 * docker's json-file driver keeps everything by default, and a chatty container then fills the disk. 10 MiB x 3
 * bounds a container to 30 MiB while keeping far more than a `logs --tail` needs; it is the setting people
 * commonly give docker (`--log-opt max-size=10m --log-opt max-file=3`) and the size Kubernetes' kubelet
 * rotates container logs at.
 */
export const DEFAULT_LOG_ROTATION: LogRotation = { maxSizeBytes: 10 * 1024 * 1024, maxFiles: 3 };

/** Queued bytes beyond which writers wait for the file to catch up (backpressure for the shim's pipes). */
const QUEUE_HIGH_WATER_BYTES = 1024 * 1024;

/**
 * Writes a container's stdout and stderr to `<directory>/container.log` in docker's json-file format, one
 * `{"log","stream","time"}` object per line, rotating by size. Entries are timestamped and queued within the
 * write() call that brings them, so stdout and stderr interleave in the order they arrived; a single loop
 * appends the queue to the file, batching whatever accumulated into one write.
 */
export class JsonLogWriter {
  private readonly streams = new Map<LogStream, OrderedSink>();
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private appending: Promise<void> | undefined;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly directory: string,
    private readonly rotation: LogRotation,
    private file: FileHandle,
    private fileSize: number,
  ) {}

  /** Opens (or continues, after a restart) the log in `directory`, creating the directory if needed. */
  static async open(directory: string, rotation: Partial<LogRotation> = {}): Promise<JsonLogWriter> {
    const settings = { ...DEFAULT_LOG_ROTATION, ...rotation };
    if (!(settings.maxSizeBytes > 0) || !Number.isInteger(settings.maxFiles) || settings.maxFiles < 1) {
      throw new Error(`invalid log rotation: max size ${settings.maxSizeBytes} bytes, ${settings.maxFiles} files`);
    }
    await mkdir(directory, { recursive: true });
    const file = await openLiveFile(directory);
    // An existing file is continued, and counts towards the size limit.
    return new JsonLogWriter(directory, settings, file, (await file.stat()).size);
  }

  /** The sink for one of the container's streams (the same Writable on every call); pipe the stream into it. */
  stream(name: LogStream): Writable {
    let sink = this.streams.get(name);
    if (!sink) {
      sink = this.createSink(name);
      this.streams.set(name, sink);
    }
    return sink;
  }

  /**
   * Ends both streams (flushing a last unterminated line), waits for everything queued to reach the file, then
   * syncs it once: no fsync per line, but what the container printed survives a host crash after it exited.
   * `sync` false skips that, for a log removed with its container at the end of the run (`--rm`).
   * Call it once the container's pipes have ended. Rejects with the first write that failed, if any.
   */
  close(sync = true): Promise<void> {
    this.closing ??= this.finish(sync);
    return this.closing;
  }

  private async finish(sync: boolean): Promise<void> {
    for (const sink of this.streams.values()) {
      if (!sink.writableEnded) sink.end();
      await finished(sink);
    }
    await this.appending;
    try {
      if (sync) await this.file.datasync();
    } finally {
      await this.file.close();
    }
    if (this.failure) throw this.failure;
  }

  private createSink(name: LogStream): OrderedSink {
    const splitter = new LineSplitter();
    return new OrderedSink({
      accept: (chunk) => this.enqueue(name, splitter.push(chunk)),
      finish: () => {
        const rest = splitter.flush();
        if (rest) this.enqueue(name, [rest]);
      },
      hasRoom: () => this.queuedBytes <= QUEUE_HIGH_WATER_BYTES,
    });
  }

  private enqueue(stream: LogStream, texts: Buffer[]): void {
    if (texts.length === 0) return;
    const time = formatRfc3339Nano(nowNanos());
    for (const text of texts) {
      const line = serializeLogEntry({ stream, time, log: text.toString('utf8') });
      this.queue.push(line);
      this.queuedBytes += line.length;
    }
    this.appending ??= this.appendQueued();
  }

  /**
   * A batch that cannot be written (disk full) is dropped and the failure kept for close(): the sinks never
   * fail, because a shim whose pipe stopped draining would block the container on its next print.
   */
  private async appendQueued(): Promise<void> {
    const { maxSizeBytes } = this.rotation;
    while (this.queue.length > 0) {
      const rotateFirst = this.fileSize > 0 && this.fileSize + this.queue[0]!.length > maxSizeBytes;
      const batch = this.takeLines(rotateFirst ? maxSizeBytes : maxSizeBytes - this.fileSize);
      try {
        if (rotateFirst) await this.rotate();
        await this.file.writeFile(batch);
        this.fileSize += batch.length;
      } catch (error) {
        this.failure ??= error as Error;
      }
      this.queuedBytes -= batch.length;
      if (this.queuedBytes <= QUEUE_HIGH_WATER_BYTES) for (const sink of this.streams.values()) sink.roomAvailable();
    }
    // Cleared in the same step that saw the queue empty: an entry queued from now on starts a new loop.
    this.appending = undefined;
  }

  /** The queued lines that fit in `room` bytes; at least one, so an entry larger than a file gets one alone. */
  private takeLines(room: number): Buffer {
    let size = 0;
    let count = 0;
    for (const line of this.queue) {
      if (count > 0 && size + line.length > room) break;
      size += line.length;
      count++;
    }
    return Buffer.concat(this.queue.splice(0, count), size);
  }

  /** Whatever happens to the renames, a live file is open afterwards (a failed rotation is tried again). */
  private async rotate(): Promise<void> {
    await this.file.close();
    try {
      await rotateLogFiles(this.directory, this.rotation.maxFiles);
    } finally {
      this.file = await openLiveFile(this.directory);
      this.fileSize = (await this.file.stat()).size;
    }
  }
}

function openLiveFile(directory: string): Promise<FileHandle> {
  return open(logFilePath(directory, 0), 'a', 0o640);
}
