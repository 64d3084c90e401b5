import { Writable } from 'node:stream';

export interface SinkTarget {
  accept(chunk: Buffer): void;
  /** The stream ended. */
  finish(): void;
  hasRoom(): boolean;
}

type WriteCallback = (error: Error | null | undefined) => void;

/**
 * A Writable that hands every chunk to its target within the write() call itself, so chunks written to two
 * sinks keep the order of the write() calls. (A plain Writable whose write callback waits for the disk holds
 * the next chunks back meanwhile, and a second stream written in that time overtakes them.) Backpressure
 * still works the usual way for pipe(): write() returns false while the target is full, and 'drain' follows
 * when it has room again.
 */
export class OrderedSink extends Writable {
  private waitingForRoom = false;

  constructor(private readonly target: SinkTarget) {
    super({
      write: (chunk: Buffer, _encoding, callback) => {
        target.accept(chunk);
        callback();
      },
      final: (callback) => {
        target.finish();
        callback();
      },
    });
  }

  override write(chunk: unknown, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback): boolean {
    const accepted = super.write(chunk, encoding as BufferEncoding, callback);
    if (this.target.hasRoom()) return accepted;
    this.waitingForRoom = true;
    return false;
  }

  /** The target has room again: writers told to wait may go on. */
  roomAvailable(): void {
    if (!this.waitingForRoom) return;
    this.waitingForRoom = false;
    this.emit('drain');
  }
}
