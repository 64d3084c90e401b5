import { randomUUID, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../platform/logger.js';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type {
  CreateUploadResult,
  Lease,
  LeaseFence,
  MetadataStore,
  UploadClaim,
  UploadPolicy,
  UploadSession,
} from '../metadata/metadata-store.js';
import { createDigester, parseDigest, type DigestAlgorithm, type ParsedDigest } from '../../oci/digest.js';
import type { BlobStore, UploadHandle } from '../storage/blob-store.js';
import { storageFailure } from '../storage/storage-errors.js';
import { BLOB_MEDIA_TYPE } from '../webhooks/envelope.js';
import { NO_EVENTS, type EventOrigin, type EventSink } from '../webhooks/events.js';

/**
 * Waits out a garbage collection of the digest before its bytes are committed, renewing the upload's lease in
 * the same step (server/gc/commit-guard.ts).
 */
export interface CommitGuard {
  prepare(digest: string, lease: Lease): Promise<'new' | 'existing' | 'lease-lost'>;
}

/**
 * A chunk as the client described it: `range` from Content-Range ('invalid' when the header cannot be read,
 * answered 416 with the upload's current Range once the session is known), `length` from Content-Length.
 */
export interface ChunkRequest {
  source: Readable;
  range?: { start: number; end: number } | 'invalid';
  length?: number;
}

// Renewed every 2 s while a request works, so a dead replica frees the upload within seconds (a registry
// restarted on the same host takes over its predecessor's leases at once, see lease-holder.ts).
const UPLOAD_LEASE_MS = 8_000;
const LEASE_RENEW_MS = 2_000;
// A cancel waits for a request working on the upload to finish rather than pull the bytes from under it.
const CANCEL_WAIT_MS = 10_000;
// A chunk or the final PUT waits this long for the lease, so that a client that sends its next chunk while the
// previous one is still being received (pipelined, or on another connection) is served in turn, not refused.
// A request releases the lease in the same step as it records its offset, before its answer, so a client
// that waits for each answer never waits here. A loaded machine can take seconds to receive the previous
// chunk; a conflicting duplicate still ends in 416.
const HANDOVER_WAIT_MS = 5_000;
const CANCEL_POLL_MS = 50;
// Hash states kept in memory; beyond this the least recently used is dropped and rebuilt from storage if needed.
const MAX_CACHED_HASHES = 1_000;

interface CachedHash {
  hash: Hash;
  offset: number;
}

/**
 * Upload sessions: their state lives in the metadata store, their bytes in the blob store, so any process
 * can continue any upload, also after a restart. The running sha256 of each upload is kept in memory; when
 * it is missing (another process took the previous chunk, or this one restarted) it is rebuilt by reading
 * back the bytes received so far, once.
 */
export class UploadService {
  private readonly hashes = new Map<string, CachedHash>();

  constructor(
    private readonly metadata: MetadataStore,
    private readonly store: BlobStore,
    private readonly logger: Logger,
    private readonly commitGuard: CommitGuard,
    private readonly policy: UploadPolicy,
    private readonly events: EventSink = NO_EVENTS,
  ) {}

  /** Opens an upload session; 429 when the repository or the client already has its maximum of open ones. */
  async start(repository: string, origin: EventOrigin | undefined): Promise<UploadSession> {
    const id = randomUUID();
    const storeState = await this.store.createUpload(id);
    const now = Date.now();
    const session: UploadSession = { id, repository, owner: uploadOwner(origin), offset: 0, storeState, startedAt: now, updatedAt: now };
    const created = await this.metadata.createUpload(session, this.policy);
    if (created !== 'ok') {
      await this.store.abortUpload(toHandle(session));
      throw tooManyUploads(created, this.policy);
    }
    return session;
  }

  /** Links a blob from another repository; undefined when `from` cannot see it (the caller then uploads). */
  async mount(repository: string, from: string, digest: string, origin?: EventOrigin): Promise<number | undefined> {
    const size = await this.metadata.mountBlob(from, repository, digest);
    if (size !== undefined) {
      await this.events.emit({
        action: 'mount',
        repository,
        fromRepository: from,
        target: { mediaType: BLOB_MEDIA_TYPE, digest, size },
        origin,
      });
    }
    return size;
  }

  async status(repository: string, uploadId: string): Promise<UploadSession> {
    return this.session(repository, uploadId);
  }

  async append(repository: string, uploadId: string, chunk: ChunkRequest): Promise<UploadSession> {
    return this.withUploadLease(repository, uploadId, (held) => this.appendLocked(held.session, chunk, held), HANDOVER_WAIT_MS);
  }

  /** Finishes an upload, with an optional last chunk, verifying the digest; returns the canonical digest. */
  async complete(repository: string, uploadId: string, digestParam: string, chunk?: ChunkRequest, origin?: EventOrigin): Promise<string> {
    const expected = parseDigest(digestParam);
    return this.withUploadLease(
      repository,
      uploadId,
      async (held) => {
        const { session } = held;
        if (!(await this.store.hasUpload(toHandle(session)))) return this.completeFromStoredBlob(held, expected, chunk, origin);
        const current = chunk ? await this.appendLocked(session, chunk, undefined) : session;
        const actual = await this.computeDigest(current, expected.algorithm);
        if (actual !== expected.value) {
          await this.discard(current);
          throw new CodedError(DistributionErrors.DIGEST_INVALID, 'provided digest did not match uploaded content', {
            detail: { expected: expected.value, actual },
          });
        }
        let prepared = await this.prepareCommit(held, actual);
        if (prepared === 'existing') {
          if (await this.recordAgainstStoredBlob(current, held, actual, origin)) return actual;
          // The collector took the record since prepare: this upload's bytes, still here, become the blob.
          prepared = await this.prepareCommit(held, actual);
        }
        await this.store.commitUpload(toHandle(current), actual);
        return this.recordCommitted(current, held, actual, prepared, origin);
      },
      HANDOVER_WAIT_MS,
    );
  }

  /**
   * The upload's bytes are gone from its storage: a commit moved them to their address and crashed before
   * recording them, or they were lost. The retried PUT completes if the bytes at the address are exactly
   * this upload's (its size, hashing to the digest asked for); otherwise the client must start over.
   */
  private async completeFromStoredBlob(
    held: HeldUpload,
    expected: ParsedDigest,
    chunk: ChunkRequest | undefined,
    origin?: EventOrigin,
  ): Promise<string> {
    const { session } = held;
    if (chunk === undefined && (await this.store.blobSize(expected.value)) === session.offset) {
      const prepared = await this.prepareCommit(held, expected.value);
      if ((await this.hashStoredBlob(expected)) === expected.value)
        return this.recordCommitted(session, held, expected.value, prepared, origin);
    }
    await this.discard(session);
    throw new CodedError(DistributionErrors.BLOB_UPLOAD_UNKNOWN, 'the bytes of this upload are gone; start the upload again', {
      detail: { uploadId: session.id },
    });
  }

  /**
   * The digest cleared for commit, and the lease confirmed held (renewed in the same step): the move and the
   * record that follow cannot be undone, and a lease lost meanwhile (this process stalled past its TTL) may
   * be another request's now.
   */
  private async prepareCommit(held: HeldUpload, digest: string): Promise<'new' | 'existing'> {
    const prepared = await this.commitGuard.prepare(digest, held.lease);
    if (prepared === 'lease-lost') throw busy(held.session);
    return prepared;
  }

  private async hashStoredBlob(digest: ParsedDigest): Promise<string> {
    const hash = createDigester(digest.algorithm);
    await pipeline(await this.store.openBlob(digest.value), async (source: AsyncIterable<Buffer>) => {
      for await (const data of source) hash.update(data);
    });
    return `${digest.algorithm}:${hash.digest('hex')}`;
  }

  /**
   * Bytes already recorded under the digest were verified when they were committed: they stay, the upload is
   * recorded against them, and only then is its own copy dropped, so that a collection racing the commit
   * still finds this upload's bytes to fall back on (false). Rewriting the stored bytes would cost a copy
   * and, on an S3-compatible server that overwrites objects in place (s3rver does), let a reader of the
   * blob find it missing meanwhile.
   */
  private async recordAgainstStoredBlob(session: UploadSession, held: HeldUpload, digest: string, origin?: EventOrigin): Promise<boolean> {
    const result = await this.metadata.completeUpload(session.id, session.repository, digest, session.offset, true, held.fence);
    if (result === 'collected') return false;
    held.releasedByWrite();
    if (result === 'unknown-upload') throw cancelledWhileCompleting();
    // Bytes a failed abort leaves behind belong to no session any more: the purge of stored uploads takes them.
    await this.store
      .abortUpload(toHandle(session))
      .catch((error: unknown) => this.logger.warn({ err: error, uploadId: session.id }, 'could not drop the copy of an existing blob'));
    await this.recorded(session, digest, origin);
    return true;
  }

  /** Records bytes now at the digest's address as the upload's blob, ending the session. */
  private async recordCommitted(
    session: UploadSession,
    held: HeldUpload,
    digest: string,
    prepared: 'new' | 'existing',
    origin?: EventOrigin,
  ): Promise<string> {
    const existing = prepared === 'existing';
    const result = await this.metadata.completeUpload(session.id, session.repository, digest, session.offset, existing, held.fence);
    if (result !== 'collected') held.releasedByWrite();
    if (result === 'unknown-upload') throw cancelledWhileCompleting();
    if (result === 'collected') {
      // The collector deleted this digest's bytes (maybe ours) while the upload completed: start over.
      await this.discard(session);
      throw new CodedError(
        DistributionErrors.BLOB_UPLOAD_INVALID,
        'the blob was garbage collected while this upload completed; upload it again',
      );
    }
    await this.recorded(session, digest, origin);
    return digest;
  }

  private async recorded(session: UploadSession, digest: string, origin?: EventOrigin): Promise<void> {
    this.hashes.delete(session.id);
    await this.events.emit({
      action: 'push',
      repository: session.repository,
      target: { mediaType: BLOB_MEDIA_TYPE, digest, size: session.offset },
      origin,
    });
  }

  /** POST with ?digest=: a whole blob in one request. */
  async uploadMonolithic(repository: string, digestParam: string, chunk: ChunkRequest, origin?: EventOrigin): Promise<string> {
    parseDigest(digestParam);
    const session = await this.start(repository, origin);
    try {
      return await this.complete(repository, session.id, digestParam, chunk, origin);
    } catch (error) {
      await this.discard(session).catch(() => undefined);
      throw error;
    }
  }

  /** Serialized with the upload's other requests: a commit under way finishes (or fails) before the bytes go. */
  async cancel(repository: string, uploadId: string): Promise<void> {
    await this.withUploadLease(repository, uploadId, (held) => this.discard(held.session), CANCEL_WAIT_MS);
  }

  private async session(repository: string, uploadId: string): Promise<UploadSession> {
    return knownSession(repository, uploadId, await this.metadata.getUpload(uploadId));
  }

  /** `releasing`: the request ends with this chunk, so the offset's record also releases its lease. */
  private async appendLocked(session: UploadSession, chunk: ChunkRequest, releasing: HeldUpload | undefined): Promise<UploadSession> {
    const range = checkedRange(session, chunk);
    const hashed = await this.hashAt(session);
    let written: number;
    let storeState: string;
    try {
      ({ written, storeState } = await this.store.writeUpload(toHandle(session), chunk.source, (data) => hashed.hash.update(data)));
    } catch (error) {
      this.hashes.delete(session.id);
      // A full or failing disk is the registry's fault, answered as such (server/storage/storage-errors.ts).
      if (error instanceof CodedError || storageFailure(error)) throw error;
      if (isClientAbort(error, chunk.source)) throw truncatedBody();
      throw error;
    }
    const expectedLength = range ? range.end - range.start + 1 : chunk.length;
    if (expectedLength !== undefined && written !== expectedLength) {
      this.hashes.delete(session.id);
      throw new CodedError(DistributionErrors.SIZE_INVALID, `received ${written} bytes but the request declared ${expectedLength}`, {
        detail: { received: written, declared: expectedLength },
      });
    }
    const offset = session.offset + written;
    const advanced = await this.metadata.advanceUpload(session.id, session.offset, offset, storeState, this.policy, releasing?.fence);
    releasing?.releasedByWrite();
    if (!advanced) {
      this.hashes.delete(session.id);
      throw outOfOrder(session);
    }
    hashed.offset = offset;
    return { ...session, offset, storeState, updatedAt: Date.now() };
  }

  /** The running hash positioned at the session's offset, rebuilt from storage when not cached here. */
  private async hashAt(session: UploadSession): Promise<CachedHash> {
    const cached = this.hashes.get(session.id);
    if (cached && cached.offset === session.offset) {
      this.hashes.delete(session.id);
      this.hashes.set(session.id, cached);
      return cached;
    }
    const rebuilt = { hash: await this.hashStored(session, 'sha256'), offset: session.offset };
    this.hashes.set(session.id, rebuilt);
    if (this.hashes.size > MAX_CACHED_HASHES) {
      const oldest = this.hashes.keys().next().value;
      if (oldest !== undefined) this.hashes.delete(oldest);
    }
    return rebuilt;
  }

  private async hashStored(session: UploadSession, algorithm: DigestAlgorithm): Promise<Hash> {
    const hash = createDigester(algorithm);
    if (session.offset > 0) {
      this.logger.debug({ uploadId: session.id, bytes: session.offset, algorithm }, 'rebuilding upload hash from storage');
      await pipeline(this.store.readUpload(toHandle(session)), async (source: AsyncIterable<Buffer>) => {
        for await (const data of source) hash.update(data);
      });
    }
    return hash;
  }

  // sha256 is kept running while bytes arrive; any other algorithm is computed once, at the end.
  private async computeDigest(session: UploadSession, algorithm: DigestAlgorithm): Promise<string> {
    const hash = algorithm === 'sha256' ? (await this.hashAt(session)).hash.copy() : await this.hashStored(session, algorithm);
    return `${algorithm}:${hash.digest('hex')}`;
  }

  private async discard(session: UploadSession): Promise<void> {
    this.hashes.delete(session.id);
    await this.metadata.deleteUpload(session.id);
    await this.store.abortUpload(toHandle(session));
  }

  /**
   * Runs `work` holding the upload's lease, with the session as it is once the lease is held: a session read
   * before could be stale, and writing at a stale offset would overwrite acknowledged bytes. The lease is
   * claimed and the session read in one step. A busy lease is waited for up to `waitMs`.
   */
  private async withUploadLease<T>(
    repository: string,
    uploadId: string,
    work: (held: HeldUpload) => Promise<T>,
    waitMs: number,
  ): Promise<T> {
    const { lease, session } = await this.claimUpload(uploadId, waitMs);
    if (!lease) throw busy(knownSession(repository, uploadId, session));
    if (!session || session.repository !== repository) void lease.release().catch(() => undefined);
    const held = new HeldUpload(knownSession(repository, uploadId, session), lease);
    const renewal = setInterval(() => void renewQuietly(lease), LEASE_RENEW_MS);
    try {
      return await work(held);
    } finally {
      clearInterval(renewal);
      // Unless the request's last write released it: sent before the answer and not waited for (under
      // appendfsync always its reply waits for an fsync of Redis's log). Redis applies a connection's commands
      // in order, so this process's next claim of the upload comes after the release; a lost release only
      // leaves the lease to expire, as a failed one always did.
      if (!held.released) void lease.release().catch(() => undefined);
    }
  }

  private async claimUpload(uploadId: string, waitMs: number): Promise<UploadClaim> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const claim = await this.metadata.claimUpload(uploadId, UPLOAD_LEASE_MS);
      if (claim.lease || !claim.session || Date.now() >= deadline) return claim;
      await sleep(CANCEL_POLL_MS);
    }
  }
}

/** An upload's lease held by a request, and the session as it was read when the lease was claimed. */
class HeldUpload {
  private releasedWithWrite = false;

  constructor(
    readonly session: UploadSession,
    readonly lease: Lease,
  ) {}

  get fence(): LeaseFence {
    return this.lease.fence;
  }

  /** A metadata write that ends the request released the lease with it: nothing is left to release. */
  releasedByWrite(): void {
    this.releasedWithWrite = true;
  }

  get released(): boolean {
    return this.releasedWithWrite;
  }
}

function knownSession(repository: string, uploadId: string, session: UploadSession | undefined): UploadSession {
  if (!session || session.repository !== repository) {
    throw new CodedError(DistributionErrors.BLOB_UPLOAD_UNKNOWN, undefined, { detail: { uploadId } });
  }
  return session;
}

async function renewQuietly(lease: Lease): Promise<void> {
  await lease.renew().catch(() => false);
}

function busy(session: UploadSession): CodedError {
  return new CodedError(DistributionErrors.RANGE_INVALID, 'another request is writing to this upload', { headers: uploadHeaders(session) });
}

/** The chunk's range once it is known to continue the upload exactly where it stands (else a 416). */
function checkedRange(session: UploadSession, chunk: ChunkRequest): { start: number; end: number } | undefined {
  if (!chunk.range) return undefined;
  if (chunk.range === 'invalid') {
    throw new CodedError(DistributionErrors.RANGE_INVALID, 'invalid Content-Range: expected <start>-<end>', {
      headers: uploadHeaders(session),
    });
  }
  const { start, end } = chunk.range;
  if (start !== session.offset || end < start) throw outOfOrder(session);
  if (chunk.length !== undefined && chunk.length !== end - start + 1) {
    throw new CodedError(DistributionErrors.RANGE_INVALID, 'Content-Length does not match Content-Range', {
      headers: uploadHeaders(session),
    });
  }
  return chunk.range;
}

function toHandle(session: UploadSession): UploadHandle {
  return { id: session.id, offset: session.offset, storeState: session.storeState };
}

/**
 * Where an upload stands, as every answer about it says so (202 and 204, and the 416s that tell a client where
 * to resume): its URL, the bytes received (Range: inclusive end, `0-0` when none) and its id.
 */
export function uploadHeaders(session: UploadSession): Record<string, string> {
  return {
    Location: `/v2/${session.repository}/blobs/uploads/${session.id}`,
    Range: `0-${Math.max(session.offset - 1, 0)}`,
    'Docker-Upload-UUID': session.id,
    'Blob-Upload-Session-ID': session.id,
  };
}

function outOfOrder(session: UploadSession): CodedError {
  return new CodedError(DistributionErrors.RANGE_INVALID, `chunk must start at offset ${session.offset}`, {
    detail: { offset: session.offset },
    headers: uploadHeaders(session),
  });
}

/** Open uploads count against the account that pushes, or the client's address when it is anonymous. */
function uploadOwner(origin: EventOrigin | undefined): string {
  if (origin?.user) return `user:${origin.user}`;
  return `address:${origin?.addr ?? 'unknown'}`;
}

function tooManyUploads(result: Exclude<CreateUploadResult, 'ok'>, policy: UploadPolicy): CodedError {
  const [whose, limit] = result === 'repository-full' ? ['this repository', policy.maxPerRepository] : ['this client', policy.maxPerOwner];
  return new CodedError(DistributionErrors.TOOMANYREQUESTS, `${whose} already has ${limit} open uploads; finish or cancel some first`, {
    detail: { limit },
    headers: { 'Retry-After': '60' },
  });
}

function truncatedBody(): CodedError {
  return new CodedError(DistributionErrors.BLOB_UPLOAD_INVALID, 'request body ended before all declared bytes arrived');
}

function isClientAbort(error: unknown, source: Readable): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || source.destroyed;
}

function cancelledWhileCompleting(): CodedError {
  return new CodedError(DistributionErrors.BLOB_UPLOAD_UNKNOWN, 'upload was cancelled while it was being completed');
}
