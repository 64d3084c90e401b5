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

/** Sees each chunk of an upload's body, in order, as the store takes it. */
export type ChunkReceiver = (chunk: Buffer) => void;

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

/** A blob's open file and where its bytes to send start; whoever receives it closes the handle. */
export interface BlobFileRange {
  handle: FileHandle;
  start: number;
}

export interface StoredBlob {
  digest: string;
  size: number;
  /** When the bytes were last written or committed (ms since the epoch). */
  modifiedAt: number;
}

/**
 * Content-addressed blob storage. One copy of each blob for the whole registry; which repositories may see
 * a blob is metadata, not storage. Uploads are written at an offset so that a failed or repeated chunk
 * never corrupts what was acknowledged before it.
 */
export interface BlobStore {
  readonly kind: string;
  /** Prepares backing storage for a new upload and returns its initial store state. */
  createUpload(uploadId: string): Promise<string>;
  /**
   * Writes `source` at `upload.offset`, discarding anything past that offset first, and makes it durable
   * before resolving. Each chunk taken from `source` goes to `received` first, in order (the upload's running
   * hash is kept there, without a stream stage of its own). Rejects (leaving `upload.offset` authoritative) if
   * the source fails or ends early. A store that gives up leaves `source` undestroyed: it is the request, whose
   * socket still has to carry the answer.
   */
  writeUpload(upload: UploadHandle, source: Readable, received: ChunkReceiver): Promise<{ written: number; storeState: string }>;
  /** The bytes received so far, to rebuild a digest when the in-memory hash state was lost. */
  readUpload(upload: UploadHandle): Readable;
  /**
   * Whether every byte up to `upload.offset` is still in the upload's storage (a commit that crashed after
   * moving the bytes, or a cancel, leaves none).
   */
  hasUpload(upload: UploadHandle): Promise<boolean>;
  /**
   * Moves a verified upload to its content address, durably, replacing whatever is there: bytes found at an
   * address are never trusted to hash to it. Never creates or extends the upload's bytes: BLOB_UPLOAD_UNKNOWN
   * (404) when they are gone, BLOB_UPLOAD_INVALID (400) when fewer than `upload.offset` remain.
   */
  commitUpload(upload: UploadHandle, digest: string): Promise<void>;
  abortUpload(upload: UploadHandle): Promise<void>;
  /** The uploads that have bytes in the store, a page at a time, so abandoned ones can be purged. */
  storedUploads(): AsyncIterable<StoredUpload[]>;
  /**
   * Streams a stored blob, or a byte range of it. The range's length lets a store plan its reads (S3 reads a
   * large one as parallel ranged GETs), so a reader that knows the blob's size passes the whole range.
   */
  openBlob(digest: string, range?: ByteRange): Promise<Readable>;
  /**
   * The blob as an open file, for stores that keep files: the server then sends it through two reused
   * buffers instead of a stream that allocates a buffer per chunk. A store that keeps no files resolves
   * undefined, and the blob is read with openBlob.
   */
  openBlobFile(digest: string): Promise<FileHandle | undefined>;
  deleteBlob(digest: string): Promise<void>;
  /** The size of the bytes at the digest's address, or undefined when there are none. */
  blobSize(digest: string): Promise<number | undefined>;
  /**
   * Every blob in storage, a page at a time (never the whole listing in memory), whatever the metadata says:
   * the garbage collector compares it with the records to find bytes that have none.
   */
  listBlobs(): AsyncIterable<StoredBlob[]>;
  /**
   * Where clients may fetch the blob directly (e.g. a presigned S3 URL), or undefined to stream it through
   * the registry (always, for a store without such a place).
   */
  redirectUrl(digest: string): Promise<string | undefined>;
}
