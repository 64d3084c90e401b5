import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { BlobStore, ByteRange, ChunkReceiver, StoredBlob, StoredUpload, UploadHandle } from '../storage/blob-store.js';
import type { RegistryMetrics } from './metrics.js';

/**
 * A blob store that times each operation into berth_storage_operation_duration_seconds. Every member of
 * BlobStore is written out here (none is optional), so a member added to the interface and not forwarded
 * is a compile error rather than a feature silently lost behind the wrapper.
 */
export class TimedBlobStore implements BlobStore {
  readonly kind: string;

  constructor(
    private readonly inner: BlobStore,
    private readonly metrics: RegistryMetrics,
  ) {
    this.kind = inner.kind;
  }

  createUpload(uploadId: string): Promise<string> {
    return this.timed('create_upload', () => this.inner.createUpload(uploadId));
  }

  async writeUpload(upload: UploadHandle, source: Readable, received: ChunkReceiver): Promise<{ written: number; storeState: string }> {
    this.metrics.activeUploads.inc();
    try {
      return await this.timed('write_upload', () => this.inner.writeUpload(upload, source, received));
    } finally {
      this.metrics.activeUploads.dec();
    }
  }

  // A stream's duration is its consumer's; only opening is timed.
  readUpload(upload: UploadHandle): Readable {
    return this.inner.readUpload(upload);
  }

  hasUpload(upload: UploadHandle): Promise<boolean> {
    return this.timed('has_upload', () => this.inner.hasUpload(upload));
  }

  commitUpload(upload: UploadHandle, digest: string): Promise<void> {
    return this.timed('commit_upload', () => this.inner.commitUpload(upload, digest));
  }

  abortUpload(upload: UploadHandle): Promise<void> {
    return this.timed('abort_upload', () => this.inner.abortUpload(upload));
  }

  storedUploads(): AsyncIterable<StoredUpload[]> {
    return this.inner.storedUploads();
  }

  openBlob(digest: string, range?: ByteRange): Promise<Readable> {
    return this.timed('open_blob', () => this.inner.openBlob(digest, range));
  }

  openBlobFile(digest: string): Promise<FileHandle | undefined> {
    return this.timed('open_blob_file', () => this.inner.openBlobFile(digest));
  }

  redirectUrl(digest: string): Promise<string | undefined> {
    return this.timed('redirect_url', () => this.inner.redirectUrl(digest));
  }

  deleteBlob(digest: string): Promise<void> {
    return this.timed('delete_blob', () => this.inner.deleteBlob(digest));
  }

  blobSize(digest: string): Promise<number | undefined> {
    return this.timed('blob_size', () => this.inner.blobSize(digest));
  }

  // A listing's duration is its consumer's, as a stream's.
  listBlobs(): AsyncIterable<StoredBlob[]> {
    return this.inner.listBlobs();
  }

  private async timed<T>(action: string, operation: () => Promise<T>): Promise<T> {
    const stop = this.metrics.storageDuration.startTimer({ store: this.inner.kind, action });
    try {
      const result = await operation();
      stop({ outcome: 'ok' });
      return result;
    } catch (error) {
      stop({ outcome: 'error' });
      throw error;
    }
  }
}
