import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Logger } from '../../../platform/logger.js';
import { CodedError, DistributionErrors } from '../../../platform/errors.js';
import type { ByteRange } from '../blob-store.js';
import { BlobUrlSigner } from './blob-url-signer.js';

export interface ListedObject {
  key: string;
  size: number;
  /** ms since the epoch. */
  modifiedAt: number;
}

export interface CompletedPart {
  PartNumber: number;
  ETag: string;
}

// The SDK retries a request until its response headers arrive; a body cut off after that is retried here.
const BODY_READ_ATTEMPTS = 4;
const BODY_RETRY_BASE_MS = 100;

/**
 * The S3 calls the blob store makes, on one bucket, each mapped to the registry's failure model: a missing
 * object is `undefined` or BLOB_UNKNOWN where the caller expects that, and any other failure that outlasted
 * the SDK's retries is logged with the S3 operation and key, then thrown as 503 UNAVAILABLE — never a 500.
 */
export class S3Objects {
  private readonly signer: BlobUrlSigner;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly logger: Logger,
  ) {
    this.signer = new BlobUrlSigner(client, bucket);
  }

  put(key: string, body: Buffer): Promise<void> {
    return this.call('PutObject', key, async () => {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length }));
    });
  }

  /** The object's size, or undefined if it does not exist. */
  size(key: string): Promise<number | undefined> {
    return this.call('HeadObject', key, async () => {
      try {
        const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
        return head.ContentLength ?? 0;
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    });
  }

  /** An object (or a range of it) as a stream; undefined if it does not exist. */
  open(key: string, range?: ByteRange): Promise<Readable | undefined> {
    return this.call('GetObject', key, async () => {
      try {
        const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: rangeHeader(range) }));
        return response.Body as Readable;
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    });
  }

  /** A range of an object read into memory (at most a segment), retried as a whole if the body is cut off. */
  async read(key: string, range: ByteRange): Promise<Buffer> {
    const bytes = await this.readIfExists(key, range);
    if (!bytes) throw this.unavailable('GetObject', key, new Error('upload segment is missing'));
    return bytes;
  }

  /** As read, but undefined when the object does not exist. */
  async readIfExists(key: string, range: ByteRange): Promise<Buffer | undefined> {
    const length = range.end - range.start + 1;
    for (let attempt = 1; ; attempt++) {
      const body = await this.open(key, range);
      if (!body) return undefined;
      try {
        const bytes = await collect(body, length);
        if (bytes.length === length) return bytes;
        throw new Error(`expected ${length} bytes, got ${bytes.length}`);
      } catch (error) {
        if (attempt >= BODY_READ_ATTEMPTS) throw this.unavailable('GetObject', key, error);
        await sleep(jitteredBackoff(attempt));
      }
    }
  }

  copy(sourceKey: string, key: string): Promise<void> {
    return this.call('CopyObject', key, async () => {
      await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: key, CopySource: this.copySource(sourceKey) }));
    });
  }

  delete(key: string): Promise<void> {
    return this.call('DeleteObject', key, async () => {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    });
  }

  /** Every object whose key starts with `prefix`, a page of up to 1000 at a time. */
  async *list(prefix: string): AsyncIterable<ListedObject[]> {
    let token: string | undefined;
    do {
      const page = await this.call('ListObjectsV2', prefix, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token })),
      );
      yield (page.Contents ?? []).flatMap((entry) =>
        entry.Key ? [{ key: entry.Key, size: entry.Size ?? 0, modifiedAt: entry.LastModified?.getTime() ?? 0 }] : [],
      );
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Deletes every object whose key starts with `prefix`, a page of up to 1000 at a time. */
  async deletePrefix(prefix: string): Promise<void> {
    for await (const objects of this.list(prefix)) {
      const keys = objects.map((object) => ({ Key: object.key }));
      if (keys.length > 0) {
        await this.call('DeleteObjects', prefix, () =>
          this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys, Quiet: true } })),
        );
      }
    }
  }

  presign(key: string, expiresIn: number): Promise<string> {
    return this.call('GetObject (presign)', key, () => this.signer.presign(key, expiresIn));
  }

  async createMultipartUpload(key: string): Promise<string> {
    const created = await this.call('CreateMultipartUpload', key, () =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key })),
    );
    if (!created.UploadId) throw this.unavailable('CreateMultipartUpload', key, new Error('no UploadId in the response'));
    return created.UploadId;
  }

  /**
   * Copies a range of `sourceKey` into a part server-side; undefined when the server does not implement
   * UploadPartCopy (some S3-compatible servers), so the caller can send the bytes itself.
   */
  async uploadPartCopy(
    key: string,
    uploadId: string,
    partNumber: number,
    sourceKey: string,
    range: ByteRange,
  ): Promise<CompletedPart | undefined> {
    return this.call('UploadPartCopy', key, async () => {
      try {
        const copied = await this.client.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: partNumber,
            CopySource: this.copySource(sourceKey),
            CopySourceRange: rangeHeader(range),
          }),
        );
        return { PartNumber: partNumber, ETag: copied.CopyPartResult?.ETag ?? '' };
      } catch (error) {
        if (isNotImplemented(error)) return undefined;
        throw error;
      }
    });
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<CompletedPart> {
    const uploaded = await this.call('UploadPart', key, () =>
      this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
        }),
      ),
    );
    return { PartNumber: partNumber, ETag: uploaded.ETag ?? '' };
  }

  completeMultipartUpload(key: string, uploadId: string, parts: CompletedPart[]): Promise<void> {
    return this.call('CompleteMultipartUpload', key, async () => {
      await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
    });
  }

  abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    return this.call('AbortMultipartUpload', key, async () => {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    });
  }

  private copySource(key: string): string {
    return `${this.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }

  private async call<T>(operation: string, key: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof CodedError) throw error;
      throw this.unavailable(operation, key, error);
    }
  }

  private unavailable(operation: string, key: string, error: unknown): CodedError {
    this.logger.error({ s3Operation: operation, bucket: this.bucket, key, err: error }, `S3 ${operation} failed after retries`);
    return new CodedError(DistributionErrors.UNAVAILABLE, `blob storage unavailable (S3 ${operation} failed), retry shortly`, {
      detail: { operation },
      headers: { 'Retry-After': '1' },
    });
  }
}

function rangeHeader(range: ByteRange | undefined): string | undefined {
  return range ? `bytes=${range.start}-${range.end}` : undefined;
}

function errorStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function isMissing(error: unknown): boolean {
  const name = (error as Error | undefined)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || errorStatus(error) === 404;
}

function isNotImplemented(error: unknown): boolean {
  return (error as Error | undefined)?.name === 'NotImplemented' || errorStatus(error) === 501;
}

/** The body's bytes in one buffer of the expected length (one copy of each chunk); a longer body is an error. */
async function collect(body: Readable, expected: number): Promise<Buffer> {
  const bytes = Buffer.allocUnsafe(expected);
  let received = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    // Leaving the loop destroys the body.
    if (received + chunk.length > expected) throw new Error(`expected ${expected} bytes, got more`);
    received += chunk.copy(bytes, received);
  }
  return bytes.subarray(0, received);
}

// Full jitter (a random delay up to the exponential bound), as the SDK does, so retries do not align.
function jitteredBackoff(attempt: number): number {
  return Math.random() * BODY_RETRY_BASE_MS * 2 ** attempt;
}
