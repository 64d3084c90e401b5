import { Readable } from 'node:stream';
import type { ByteRange } from '../blob-store.js';
import type { S3Objects } from './s3-objects.js';

export interface RangedReadOptions {
  partSize: number;
  /** Parts read at once. */
  concurrency: number;
}

/**
 * The bytes of `range` of an object as a stream fed by ranged GETs of `partSize`, `concurrency` of them in flight:
 * one GET is bound to one connection's rate (S3 serves each connection at a fraction of what it serves a client
 * that spreads its reads), several overlap. Parts are delivered in order; each is read whole and retried whole
 * when its body is cut off (S3Objects.readIfExists). At most concurrency + 2 parts are held: those in flight, one
 * in the stream's buffer and one being sent.
 *
 * The first part is read before this resolves, so a missing object (undefined) or an S3 failure is known
 * while a status can still say so. A part that fails later errors the stream: whoever sends it must abort
 * the response. When the stream is destroyed early, the reads still in flight finish and are dropped.
 */
export async function openRanged(
  objects: S3Objects,
  key: string,
  range: ByteRange,
  options: RangedReadOptions,
): Promise<Readable | undefined> {
  const parts = partsOf(range, options.partSize);
  const inFlight: Array<Promise<Buffer | undefined>> = [];
  let next = 0;
  const fill = () => {
    while (inFlight.length < options.concurrency && next < parts.length) {
      const read = objects.readIfExists(key, parts[next++]!);
      // Awaited in order below; until then (or if the stream is destroyed first) a failure must not go unhandled.
      read.catch(() => undefined);
      inFlight.push(read);
    }
  };
  fill();
  const first = await inFlight.shift()!;
  if (!first) return undefined;
  return Readable.from(
    (async function* () {
      yield first;
      for (;;) {
        fill();
        const read = inFlight.shift();
        if (!read) return;
        const bytes = await read;
        if (!bytes) throw new Error(`object ${key} disappeared while it was read`);
        yield bytes;
      }
    })(),
    { objectMode: false },
  );
}

function partsOf(range: ByteRange, partSize: number): ByteRange[] {
  const parts: ByteRange[] = [];
  for (let start = range.start; start <= range.end; start += partSize) {
    parts.push({ start, end: Math.min(start + partSize - 1, range.end) });
  }
  return parts;
}
