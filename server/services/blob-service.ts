import type { Readable } from 'node:stream';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { BlobFileRange, BlobStore, ByteRange } from '../storage/blob-store.js';
import type { SmallBlobCache } from '../storage/small-blob-cache.js';
import { BLOB_MEDIA_TYPE } from '../webhooks/envelope.js';
import { NO_EVENTS, type EventOrigin, type EventSink } from '../webhooks/events.js';

export class BlobService {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly store: BlobStore,
    private readonly deleteEnabled: boolean,
    /** Undefined when cache.smallBlobs is off. */
    private readonly smallBlobs: SmallBlobCache | undefined,
    private readonly events: EventSink = NO_EVENTS,
  ) {}

  /** The size of a blob as seen from a repository; BLOB_UNKNOWN if the repository cannot see it. */
  async size(repository: string, digest: string, origin?: EventOrigin): Promise<number> {
    const size = await this.metadata.getRepositoryBlobSize(repository, digest);
    if (size === undefined) throw new CodedError(DistributionErrors.BLOB_UNKNOWN, undefined, { detail: { digest } });
    // Every blob GET starts here, whether it then streams or redirects (the sink ignores HEAD).
    await this.events.emit({ action: 'pull', repository, target: { mediaType: BLOB_MEDIA_TYPE, digest, size }, origin });
    return size;
  }

  /**
   * The bytes to send, of a blob `size` found visible: from memory when it is small, else a file range when
   * the store keeps files (sent with reused buffers), else a stream.
   */
  async open(digest: string, size: number, range?: ByteRange): Promise<Buffer | Readable | BlobFileRange> {
    const cached = await this.smallBlob(digest, size);
    if (cached) return range ? cached.subarray(range.start, range.end + 1) : cached;
    const handle = await this.store.openBlobFile(digest);
    if (handle) return { handle, start: range?.start ?? 0 };
    return this.store.openBlob(digest, range ?? (size > 0 ? { start: 0, end: size - 1 } : undefined));
  }

  // Asked only after the metadata lookup found the blob (not a tombstone), so bytes of a blob garbage
  // collection deleted are never served from memory.
  private async smallBlob(digest: string, size: number): Promise<Buffer | undefined> {
    if (!this.smallBlobs?.accepts(size)) return undefined;
    const cached = this.smallBlobs.get(digest);
    if (cached) return cached;
    const bytes = await readSmall(await this.store.openBlob(digest), size);
    if (bytes) this.smallBlobs.put(digest, bytes);
    return bytes;
  }

  /** A URL to send the client to for the bytes, when the store serves them directly (S3 redirects). */
  redirectUrl(digest: string): Promise<string | undefined> {
    return this.store.redirectUrl(digest);
  }

  /** Removes the repository's link; the bytes go when garbage collection finds nothing else uses them. */
  async delete(repository: string, digest: string, origin?: EventOrigin): Promise<void> {
    if (!this.deleteEnabled) throw new CodedError(DistributionErrors.DELETE_DISABLED, 'deletion is disabled on this registry');
    if (!(await this.metadata.unlinkBlob(repository, digest))) {
      throw new CodedError(DistributionErrors.BLOB_UNKNOWN, undefined, { detail: { digest } });
    }
    await this.events.emit({ action: 'delete', repository, target: { mediaType: BLOB_MEDIA_TYPE, digest }, origin });
  }
}

/** A small blob's bytes in a buffer of their own (not a slice of a shared pool); undefined if not `size` long. */
async function readSmall(stream: Readable, size: number): Promise<Buffer | undefined> {
  const bytes = Buffer.alloc(size);
  let offset = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (offset + chunk.length > size) {
      stream.destroy();
      return undefined;
    }
    offset += chunk.copy(bytes, offset);
  }
  return offset === size ? bytes : undefined;
}
