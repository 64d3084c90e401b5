import { Readable } from 'node:stream';
import type { Logger } from '../../../platform/logger.js';
import { CodedError, DistributionErrors } from '../../../platform/errors.js';
import type { BlobStore, ByteRange, ChunkReceiver, StoredBlob, StoredUpload, UploadHandle } from '../blob-store.js';
import { BlobAssembler } from './s3-assembly.js';
import { createS3Client, type S3Config } from './s3-client.js';
import { S3Layout } from './s3-layout.js';
import { S3Objects } from './s3-objects.js';
import { openRanged } from './s3-ranged-reads.js';
import { appendToSegments } from './s3-segment-writer.js';

/** What an S3 upload's session carries in Redis: the segment size it was started with. */
interface S3UploadState {
  partSize: number;
}

/**
 * Blobs in an S3 bucket. An upload's bytes are kept as plain segment objects (see S3Layout) rather than as
 * parts of an open multipart upload, because S3 cannot read back the parts of an unfinished multipart
 * upload, and a replica that did not see the previous chunks needs those bytes to rebuild the running
 * sha256. The verified upload becomes the blob by a server-side copy (BlobAssembler); its segments are
 * then deleted. The session's offset in Redis is the truth: segment bytes past it are ignored.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3';
  private readonly objects: S3Objects;
  private readonly layout: S3Layout;
  private readonly assembler: BlobAssembler;

  constructor(
    private readonly config: S3Config,
    logger: Logger,
  ) {
    this.objects = new S3Objects(createS3Client(config), config.bucket, logger);
    this.layout = new S3Layout(config.prefix);
    this.assembler = new BlobAssembler(this.objects, logger);
  }

  // Nothing exists in S3 until the first chunk: an upload that is never written costs no request.
  async createUpload(): Promise<string> {
    return JSON.stringify({ partSize: this.config.partSize } satisfies S3UploadState);
  }

  async writeUpload(upload: UploadHandle, source: Readable, received: ChunkReceiver): Promise<{ written: number; storeState: string }> {
    const write = { uploadId: upload.id, offset: upload.offset, partSize: uploadState(upload).partSize };
    return { written: await appendToSegments(this.objects, this.layout, write, source, received), storeState: upload.storeState };
  }

  readUpload(upload: UploadHandle): Readable {
    const segments = this.layout.segments(upload.id, upload.offset, uploadState(upload).partSize);
    const objects = this.objects;
    // One segment in memory at a time; each is read (and retried) whole, so a reset mid-read cannot leave
    // a hash rebuilt from a short stream.
    return Readable.from(
      (async function* () {
        for (const segment of segments) yield await objects.read(segment.key, { start: 0, end: segment.length - 1 });
      })(),
    );
  }

  async hasUpload(upload: UploadHandle): Promise<boolean> {
    const segments = this.layout.segments(upload.id, upload.offset, uploadState(upload).partSize);
    const stored = new Map<string, number>();
    for await (const objects of this.objects.list(this.layout.uploadPrefix(upload.id))) {
      for (const object of objects) stored.set(object.key, object.size);
    }
    return segments.every((segment) => (stored.get(segment.key) ?? -1) >= segment.length);
  }

  // An object found at the address is not trusted to hash to it: the verified upload is always assembled
  // over it (readers see the old or the new object whole). Missing segments fail the assembly (the key is
  // then left as it was); the upload lease keeps a cancel from deleting them while this runs.
  async commitUpload(upload: UploadHandle, digest: string): Promise<void> {
    if (!(await this.hasUpload(upload))) {
      throw new CodedError(DistributionErrors.BLOB_UPLOAD_UNKNOWN, 'the upload was cancelled or has already been completed');
    }
    await this.assembler.assemble(
      this.layout.blobKey(digest),
      this.layout.segments(upload.id, upload.offset, uploadState(upload).partSize),
    );
    await this.objects.deletePrefix(this.layout.uploadPrefix(upload.id));
  }

  async abortUpload(upload: UploadHandle): Promise<void> {
    await this.objects.deletePrefix(this.layout.uploadPrefix(upload.id));
  }

  /** Per page of segment objects, the uploads they belong to, each last written when its newest segment was. */
  async *storedUploads(): AsyncIterable<StoredUpload[]> {
    const root = this.layout.uploadsPrefix();
    for await (const objects of this.objects.list(root)) {
      const latest = new Map<string, number>();
      for (const { key, modifiedAt } of objects) {
        const id = key.slice(root.length).split('/')[0] ?? '';
        latest.set(id, Math.max(latest.get(id) ?? 0, modifiedAt));
      }
      yield [...latest].map(([id, lastWrittenAt]) => ({ id, lastWrittenAt }));
    }
  }

  async openBlob(digest: string, range?: ByteRange): Promise<Readable> {
    const key = this.layout.blobKey(digest);
    const { rangedReads } = this.config;
    const ranged = range && rangedReads.enabled && range.end - range.start + 1 >= rangedReads.minBytes;
    const body = ranged ? await openRanged(this.objects, key, range, rangedReads) : await this.objects.open(key, range);
    if (!body) throw new CodedError(DistributionErrors.BLOB_UNKNOWN, undefined, { detail: { digest } });
    return body;
  }

  // Objects are not files: blobs are read as streams (openBlob).
  async openBlobFile(): Promise<undefined> {
    return undefined;
  }

  async deleteBlob(digest: string): Promise<void> {
    await this.objects.delete(this.layout.blobKey(digest));
  }

  blobSize(digest: string): Promise<number | undefined> {
    return this.objects.size(this.layout.blobKey(digest));
  }

  async *listBlobs(): AsyncIterable<StoredBlob[]> {
    for await (const objects of this.objects.list(this.layout.blobsPrefix())) {
      yield objects.flatMap((object) => {
        const digest = this.layout.digestOf(object.key);
        return digest ? [{ digest, size: object.size, modifiedAt: object.modifiedAt }] : [];
      });
    }
  }

  /** A presigned GET for the blob when redirects are enabled: clients then fetch the bytes from S3. */
  async redirectUrl(digest: string): Promise<string | undefined> {
    const { enabled, expirySeconds } = this.config.redirect;
    return enabled ? this.objects.presign(this.layout.blobKey(digest), expirySeconds) : undefined;
  }
}

function uploadState(upload: UploadHandle): S3UploadState {
  return JSON.parse(upload.storeState) as S3UploadState;
}
