import type { Readable } from 'node:stream';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { BlobFileRange, BlobStore, ByteRange } from '../storage/blob-store.js';
import { BLOB_MEDIA_TYPE } from '../webhooks/envelope.js';
import { NO_EVENTS, type EventOrigin, type EventSink } from '../webhooks/events.js';

export class BlobService {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly store: BlobStore,
    private readonly deleteEnabled: boolean,
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

  /** The bytes to send: a file range when the store keeps files (sent with reused buffers), else a stream. */
  async open(digest: string, range?: ByteRange): Promise<Readable | BlobFileRange> {
    const handle = await this.store.openBlobFile(digest);
    return handle ? { handle, start: range?.start ?? 0 } : this.store.openBlob(digest, range);
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
