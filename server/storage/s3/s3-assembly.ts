import type { Logger } from '../../../platform/logger.js';
import type { Segment } from './s3-layout.js';
import type { CompletedPart, S3Objects } from './s3-objects.js';

// Server-side part copies are cheap for the registry (no bytes pass through it); a few in parallel make
// a large blob's completion several times faster on S3.
const PARALLEL_PART_COPIES = 4;

/**
 * Turns an upload's segments into the blob at its content-addressed key. No bytes pass through the
 * registry when the server can copy: one CopyObject for a single segment, else a multipart upload whose
 * parts are UploadPartCopy'd from the segments (every segment but the last is at least 5 MiB, S3's minimum
 * part size). Servers without UploadPartCopy (s3rver 3.7, for one) get the parts sent through the registry,
 * one segment at a time. A multipart upload is aborted on any failure: the blob key stays absent and no
 * parts are left behind.
 */
export class BlobAssembler {
  // Assumed until the server answers NotImplemented once.
  private serverSideCopy = true;

  constructor(
    private readonly objects: S3Objects,
    private readonly logger: Logger,
  ) {}

  async assemble(key: string, segments: Segment[]): Promise<void> {
    const [first] = segments;
    if (!first) return this.objects.put(key, Buffer.alloc(0));
    if (segments.length === 1) return this.copyWhole(key, first);
    const uploadId = await this.objects.createMultipartUpload(key);
    try {
      await this.objects.completeMultipartUpload(key, uploadId, await this.copyParts(key, uploadId, segments));
    } catch (error) {
      // A failed abort is logged by S3Objects; the original failure is the one to report.
      await this.objects.abortMultipartUpload(key, uploadId).catch(() => undefined);
      throw error;
    }
  }

  // A failed earlier write can leave a segment longer than the bytes acknowledged in it; only an exact
  // match may be copied whole.
  private async copyWhole(key: string, segment: Segment): Promise<void> {
    if ((await this.objects.size(segment.key)) === segment.length) return this.objects.copy(segment.key, key);
    await this.objects.put(key, await this.objects.read(segment.key, { start: 0, end: segment.length - 1 }));
  }

  private async copyParts(key: string, uploadId: string, segments: Segment[]): Promise<CompletedPart[]> {
    // The first part goes alone: it tells whether the server can copy, which decides the parallelism.
    const first = await this.copyPart(key, uploadId, segments, 0);
    const parallelism = this.serverSideCopy ? PARALLEL_PART_COPIES : 1;
    const rest = await mapInParallel(segments.length - 1, parallelism, (index) => this.copyPart(key, uploadId, segments, index + 1));
    return [first, ...rest];
  }

  private async copyPart(key: string, uploadId: string, segments: Segment[], index: number): Promise<CompletedPart> {
    const segment = segments[index]!;
    const partNumber = index + 1;
    const range = { start: 0, end: segment.length - 1 };
    if (this.serverSideCopy) {
      const part = await this.objects.uploadPartCopy(key, uploadId, partNumber, segment.key, range);
      if (part) return part;
      this.serverSideCopy = false;
      this.logger.warn(
        'the S3 server does not implement UploadPartCopy: blobs are assembled by sending their segments through the registry',
      );
    }
    return this.objects.uploadPart(key, uploadId, partNumber, await this.objects.read(segment.key, range));
  }
}

/**
 * `work(0..count-1)` with at most `parallelism` running at once; results in index order. After a failure
 * nothing new starts, and it rejects only once the running calls have settled, so an abort that follows
 * cannot race a part still being copied.
 */
async function mapInParallel<T>(count: number, parallelism: number, work: (index: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < count) {
      const index = next++;
      try {
        results[index] = await work(index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(parallelism, count) }, worker));
  const rejected = settled.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (rejected) throw rejected.reason;
  return results;
}
