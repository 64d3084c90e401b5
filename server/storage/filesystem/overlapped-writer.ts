import type { FileHandle } from 'node:fs/promises';
import { finished, type Readable } from 'node:stream';

// Request chunks (16-64 KiB) are gathered into writes of about this size.
const WRITE_BATCH_BYTES = 1 << 20;
// Received bytes waiting for their write, at most: beyond this the request is not read until the disk catches up,
// so memory stays flat whatever the blob's size, while a slow write (the kernel throttling dirty pages, a busy
// thread pool) does not stall the socket.
const MAX_QUEUED_BYTES = 8 << 20;
// A flush starts as soon as this much is written and none is running, so the disk works while bytes arrive and
// the flush before the acknowledgement finds little left to do: at 4 MiB an 8 MiB chunk still had 4 MiB to flush
// after its last byte (3-7 ms of this machine's disk, against ~8 ms to receive the chunk).
const DATASYNC_INTERVAL_BYTES = 1 << 20;
// Written but unflushed bytes, at most: bounds what the flush before the acknowledgement has to wait for.
const MAX_UNSYNCED_BYTES = 32 << 20;

/**
 * Writes `source` at `position` of the file and returns the bytes written, without flushing the tail: the
 * caller's datasync before its acknowledgement does that. Each chunk goes to `received` (the upload's running
 * hash) as it is taken, in order, in the same step: no stream stage between the socket and the file. Receiving,
 * writing and flushing overlap: writes run one after the other in the background while the next batch is
 * received, and a datasync runs whenever 1 MiB is unflushed; the source is paused only while the queue or the
 * unflushed bytes are past their bounds.
 *
 * A write or datasync that fails (a full disk) while the client's next bytes are awaited ends the write at once
 * and is rethrown: the source is left paused, not destroyed, because it is the request and its socket must
 * still carry the answer that says why. Nothing is left running when this returns or throws, so the caller may
 * truncate or close the file.
 */
export async function writeOverlapped(
  handle: FileHandle,
  source: Readable,
  position: number,
  received: (chunk: Buffer) => void,
): Promise<number> {
  const writer = new OverlappedWriter(handle, source, position, received);
  try {
    await writer.receive();
  } catch (error) {
    throw writer.failure ?? error;
  } finally {
    await writer.settled();
  }
  if (writer.failure) throw writer.failure;
  return writer.written;
}

class OverlappedWriter {
  failure: Error | undefined;
  written = 0;
  private synced = 0;
  private queued = 0;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  // Writes run in order on this chain, which never rejects: a failure lands in `failure`.
  private writes: Promise<void> = Promise.resolve();
  private syncing: Promise<void> | undefined;
  // Ends receive() early with a failure of the disk (set as receive() starts).
  private stopReceiving: (error: Error) => void = () => undefined;

  constructor(
    private readonly handle: FileHandle,
    private readonly source: Readable,
    private position: number,
    private readonly received: (chunk: Buffer) => void,
  ) {}

  /**
   * Takes the source's chunks as they come ('data' events: a read() or an async iterator would concatenate
   * what is buffered, one more copy of every byte), pausing it while the disk is behind.
   */
  receive(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        this.received(chunk);
        this.batch.push(chunk);
        this.batchBytes += chunk.length;
        if (this.batchBytes >= WRITE_BATCH_BYTES) this.submit();
        if (this.behind()) this.source.pause();
      };
      const stopWatching = finished(this.source, (error) => {
        this.source.off('data', onData);
        if (error) return reject(error);
        this.submit();
        resolve();
      });
      this.stopReceiving = (error) => {
        stopWatching();
        this.source.off('data', onData);
        this.source.pause();
        reject(error);
      };
      this.source.on('data', onData);
    });
  }

  /** Queues the batch received so far for writing. */
  submit(): void {
    if (this.batchBytes === 0) return;
    const buffers = this.batch;
    const bytes = this.batchBytes;
    const at = this.position;
    this.position += bytes;
    this.queued += bytes;
    this.batch = [];
    this.batchBytes = 0;
    this.writes = this.writes.then(async () => {
      try {
        if (this.failure) return;
        await writeFully(this.handle, buffers, at);
        this.written += bytes;
        this.syncIfDue();
      } catch (error) {
        this.fail(error as Error);
      } finally {
        this.queued -= bytes;
        this.notify();
      }
    });
  }

  /** Resolves once no write or datasync is running. */
  async settled(): Promise<void> {
    await this.writes;
    while (this.syncing) await this.syncing;
  }

  private syncIfDue(): void {
    if (this.syncing || this.failure || this.written - this.synced < DATASYNC_INTERVAL_BYTES) return;
    // Writes run in order, so every byte counted in `written` is in the file before this datasync starts.
    const covered = this.written;
    this.syncing = this.handle.datasync().then(
      () => {
        this.synced = covered;
        this.syncing = undefined;
        this.syncIfDue();
        this.notify();
      },
      (error: Error) => {
        this.syncing = undefined;
        this.fail(error);
      },
    );
  }

  private behind(): boolean {
    return this.queued > MAX_QUEUED_BYTES || this.written - this.synced > MAX_UNSYNCED_BYTES;
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.stopReceiving(error);
  }

  private notify(): void {
    if (this.source.isPaused() && !this.failure && !this.behind()) this.source.resume();
  }
}

/** writev until every byte is in the file: a short write (the disk filling up) goes on, so its error surfaces. */
async function writeFully(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  let at = position;
  for (;;) {
    const { bytesWritten } = await handle.writev(pending, at);
    if (bytesWritten === 0) throw new Error(`writing the upload made no progress at offset ${at}`);
    at += bytesWritten;
    pending = remainderAfter(pending, bytesWritten);
    if (pending.length === 0) return;
  }
}

function remainderAfter(buffers: Buffer[], bytes: number): Buffer[] {
  let skip = bytes;
  let index = 0;
  while (index < buffers.length && skip >= buffers[index]!.length) skip -= buffers[index++]!.length;
  if (index === buffers.length) return [];
  return [buffers[index]!.subarray(skip), ...buffers.slice(index + 1)];
}
