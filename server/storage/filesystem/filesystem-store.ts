import { constants, createReadStream } from 'node:fs';
import { mkdir, open, opendir, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { commitFile, syncPath } from '../../../platform/durable-file.js';
import { writeOverlapped } from './overlapped-writer.js';
import { CodedError, DistributionErrors } from '../../../platform/errors.js';
import type { BlobStore, ByteRange, ChunkReceiver, StoredBlob, StoredUpload, UploadHandle } from '../blob-store.js';

// Upload files stat'ed per page when listing the uploads directory.
const UPLOADS_PAGE_SIZE = 1000;

/**
 * Blobs as files under `<root>/blobs/<algorithm>/<first two hex>/<hex>`, uploads under `<root>/uploads/<id>`.
 * Every acknowledged byte is fsynced, and a blob becomes visible only by an atomic rename of a complete,
 * verified file followed by an fsync of its directory.
 */
export class FilesystemBlobStore implements BlobStore {
  readonly kind = 'filesystem';
  private readonly uploadsDir: string;
  private readonly blobsDir: string;

  constructor(root: string) {
    this.uploadsDir = path.join(root, 'uploads');
    this.blobsDir = path.join(root, 'blobs');
  }

  async init(): Promise<void> {
    await mkdir(this.uploadsDir, { recursive: true });
    await mkdir(this.blobsDir, { recursive: true });
  }

  // The file exists from the start, so that nothing later ever has to create it: a write or commit that
  // finds it gone knows the upload was cancelled (an empty blob is this empty file, committed).
  async createUpload(uploadId: string): Promise<string> {
    await (await open(this.uploadPath(uploadId), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600)).close();
    return '';
  }

  async writeUpload(upload: UploadHandle, source: Readable, received: ChunkReceiver): Promise<{ written: number; storeState: string }> {
    const handle = await this.openUpload(upload.id);
    try {
      if (upload.offset === 0) await syncPath(this.uploadsDir);
      await cutToOffset(handle, upload.offset);
      const written = await writeOverlapped(handle, source, upload.offset, received);
      // The acknowledgement's flush: a datasync writes the bytes and the file's size (the times are not needed).
      await handle.datasync();
      return { written, storeState: upload.storeState };
    } finally {
      await handle.close();
    }
  }

  readUpload(upload: UploadHandle): Readable {
    if (upload.offset === 0) return emptyStream();
    return createReadStream(this.uploadPath(upload.id), { start: 0, end: upload.offset - 1, highWaterMark: 1 << 20 });
  }

  async hasUpload(upload: UploadHandle): Promise<boolean> {
    const size = await sizeOf(this.uploadPath(upload.id));
    return size !== undefined && size >= upload.offset;
  }

  // A rename costs no copy, so the verified upload simply replaces any file at the address.
  async commitUpload(upload: UploadHandle, digest: string): Promise<void> {
    const handle = await this.openUpload(upload.id);
    try {
      await cutToOffset(handle, upload.offset);
      await markCommitted(handle);
    } finally {
      await handle.close();
    }
    await commitFile(this.uploadPath(upload.id), this.blobPath(digest)).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOENT' ? uploadUnknown() : error;
    });
  }

  async abortUpload(upload: UploadHandle): Promise<void> {
    await rm(this.uploadPath(upload.id), { force: true });
  }

  async *storedUploads(): AsyncIterable<StoredUpload[]> {
    let names: string[] = [];
    for await (const entry of await opendir(this.uploadsDir)) {
      names.push(entry.name);
      if (names.length === UPLOADS_PAGE_SIZE) {
        yield await this.uploadsWritten(names);
        names = [];
      }
    }
    if (names.length > 0) yield await this.uploadsWritten(names);
  }

  private async uploadsWritten(names: string[]): Promise<StoredUpload[]> {
    const written = await Promise.all(
      names.map((name) =>
        stat(this.uploadPath(name)).then(
          (stats) => stats.mtimeMs,
          () => undefined,
        ),
      ),
    );
    return names.flatMap((id, index) => (written[index] === undefined ? [] : [{ id, lastWrittenAt: written[index] }]));
  }

  async openBlob(digest: string, range?: ByteRange): Promise<Readable> {
    const handle = await this.openBlobFile(digest);
    return handle.createReadStream({ start: range?.start, end: range?.end, highWaterMark: 1 << 20 });
  }

  // Blobs are local files: the registry serves them itself.
  async redirectUrl(): Promise<undefined> {
    return undefined;
  }

  openBlobFile(digest: string): Promise<FileHandle> {
    return open(this.blobPath(digest), 'r').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw new CodedError(DistributionErrors.BLOB_UNKNOWN, undefined, { detail: { digest } });
      throw error;
    });
  }

  async deleteBlob(digest: string): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  blobSize(digest: string): Promise<number | undefined> {
    return sizeOf(this.blobPath(digest));
  }

  /** Walks blobs/<algorithm>/<xx>/ one directory entry at a time. */
  async *listBlobs(): AsyncIterable<StoredBlob[]> {
    let page: StoredBlob[] = [];
    for await (const algorithm of await opendir(this.blobsDir)) {
      if (!algorithm.isDirectory()) continue;
      for await (const prefix of await opendir(path.join(this.blobsDir, algorithm.name))) {
        if (!prefix.isDirectory()) continue;
        for await (const entry of await opendir(path.join(this.blobsDir, algorithm.name, prefix.name))) {
          const found = await stat(path.join(this.blobsDir, algorithm.name, prefix.name, entry.name)).catch(ignoreMissing);
          if (!found?.isFile()) continue;
          page.push({ digest: `${algorithm.name}:${entry.name}`, size: found.size, modifiedAt: found.mtimeMs });
          if (page.length >= LIST_PAGE_SIZE) {
            yield page;
            page = [];
          }
        }
      }
    }
    if (page.length > 0) yield page;
  }

  private openUpload(uploadId: string): Promise<FileHandle> {
    return open(this.uploadPath(uploadId), constants.O_RDWR).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOENT' ? uploadUnknown() : error;
    });
  }

  private uploadPath(uploadId: string): string {
    return path.join(this.uploadsDir, uploadId);
  }

  private blobPath(digest: string): string {
    const [algorithm, hex] = digest.split(':') as [string, string];
    return path.join(this.blobsDir, algorithm, hex.slice(0, 2), hex);
  }
}

const LIST_PAGE_SIZE = 1000;

// A crash after a chunk's bytes reached the file but before its offset was recorded leaves a longer file;
// the recorded offset is the truth, so cut the file to it before more bytes are written or it becomes a blob.
// A shorter file lost acknowledged bytes: it must never be extended (with zeros) or become a blob.
async function cutToOffset(handle: FileHandle, length: number): Promise<void> {
  const { size } = await handle.stat();
  if (size < length) {
    throw new CodedError(
      DistributionErrors.BLOB_UPLOAD_INVALID,
      'the bytes of this upload are incomplete in storage; start the upload again',
    );
  }
  if (size > length) await handle.truncate(length);
}

// The garbage collector spares bytes without a record only while they are recent, and the commit records
// them next. commitFile flushes the time to disk with the bytes before the rename.
async function markCommitted(handle: FileHandle): Promise<void> {
  const now = new Date();
  await handle.utimes(now, now);
}

function uploadUnknown(): CodedError {
  return new CodedError(DistributionErrors.BLOB_UPLOAD_UNKNOWN, 'the upload was cancelled or has already been completed');
}

async function sizeOf(file: string): Promise<number | undefined> {
  return (await stat(file).catch(ignoreMissing))?.size;
}

function ignoreMissing(error: NodeJS.ErrnoException): undefined {
  if (error.code !== 'ENOENT') throw error;
  return undefined;
}

function emptyStream(): Readable {
  return Readable.from([]);
}
