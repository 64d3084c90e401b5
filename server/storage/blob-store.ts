import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** What the upload service knows of an upload in progress; `storeState` belongs to the store. */
export interface UploadHandle {
  id: string;
  /** Bytes durably received so far. */
  offset: number;
  /** Opaque, store-specific state persisted with the upload session (e.g. a multipart upload id). */
  storeState: string;
}

/** An upload that has bytes in the store. */
export interface StoredUpload {
  id: string;
  /** When its bytes were last written, in ms since the epoch. */
  lastWrittenAt: number;
}

export interface ByteRange {
  start: number;
  /** Inclusive, as in HTTP ranges. */
  end: number;
}

/**
 * Content-addressed blob storage. One copy of each blob for the whole registry; which repositories may see
 * a blob is metadata, not storage. Uploads are written at an offset so that a failed or repeated chunk
 * never corrupts what was acknowledged before it.
 */
/** Bytes `start` to `start + length - 1` of an open file; whoever receives it closes the handle. */
export interface BlobFileRange {
  handle: FileHandle;
  start: number;
  length: number;
}

export interface BlobStore {
  readonly kind: string;
  /** Prepares backing storage for a new upload and returns its initial store state. */
  createUpload(uploadId: string): Promise<string>;
  /**
   * Writes `source` at `upload.offset`, discarding anything past that offset first, and makes it durable
   * before resolving. Rejects (leaving `upload.offset` authoritative) if the source fails or ends early.
   */
  writeUpload(upload: UploadHandle, source: Readable): Promise<{ written: number; storeState: string }>;
  /** The bytes received so far, to rebuild a digest when the in-memory hash state was lost. */
  readUpload(upload: UploadHandle): Readable;
  /** Moves a verified upload to its content address, durably. Idempotent if the blob already exists. */
  commitUpload(upload: UploadHandle, digest: string): Promise<void>;
  abortUpload(upload: UploadHandle): Promise<void>;
  /** The uploads that have bytes in the store, a page at a time, so abandoned ones can be purged. */
  storedUploads(): AsyncIterable<StoredUpload[]>;
  /** Streams a stored blob, or a byte range of it. */
  openBlob(digest: string, range?: ByteRange): Promise<Readable>;
  /**
   * The blob (or a byte range of it) as a range of an open file, for stores that keep files: the server then
   * sends it through two reused buffers instead of a stream that allocates a buffer per chunk.
   */
  openBlobFile?(digest: string, range?: ByteRange): Promise<BlobFileRange>;
  deleteBlob(digest: string): Promise<void>;
  /**
   * Where clients may fetch the blob directly (e.g. a presigned S3 URL), or undefined to stream it through
   * the registry. Stores without such a place leave it out.
   */
  redirectUrl?(digest: string): Promise<string | undefined>;
}
