import type { Readable } from 'node:stream';
import type { ChunkReceiver } from '../blob-store.js';
import type { S3Layout } from './s3-layout.js';
import type { S3Objects } from './s3-objects.js';

export interface SegmentWrite {
  uploadId: string;
  /** Where the chunk starts: the bytes acknowledged so far. */
  offset: number;
  partSize: number;
}

/**
 * Appends a chunk to an upload's segments (see S3Layout) through one segment-sized buffer. A segment is
 * written as soon as it fills; the part-filled last one is written when the chunk ends, so every
 * acknowledged byte is in S3 and any replica can continue. A chunk that starts inside a segment first
 * reads that segment's acknowledged bytes back: each chunk costs at most one extra segment read and write.
 * Each chunk goes to `received` as it is taken. Returns the number of bytes appended.
 */
export async function appendToSegments(
  objects: S3Objects,
  layout: S3Layout,
  write: SegmentWrite,
  source: Readable,
  received: ChunkReceiver,
): Promise<number> {
  const { uploadId, partSize } = write;
  let index = Math.floor(write.offset / partSize);
  let filled = write.offset - index * partSize;
  const buffer = Buffer.allocUnsafe(partSize);
  if (filled > 0) (await objects.read(layout.segmentKey(uploadId, index), { start: 0, end: filled - 1 })).copy(buffer);
  let written = 0;
  // The loop awaits each full segment's PutObject before reading on, so a fast client is held back by
  // TCP flow control instead of filling memory. A failed PutObject leaves the loop without destroying the
  // source: the request's socket must still carry the 503.
  for await (const chunk of source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    received(chunk);
    for (let position = 0; position < chunk.length;) {
      const copied = chunk.copy(buffer, filled, position);
      position += copied;
      filled += copied;
      written += copied;
      if (filled === partSize) {
        await objects.put(layout.segmentKey(uploadId, index), buffer);
        index += 1;
        filled = 0;
      }
    }
  }
  if (written > 0 && filled > 0) await objects.put(layout.segmentKey(uploadId, index), buffer.subarray(0, filled));
  return written;
}
