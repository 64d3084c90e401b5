import type { Redis } from 'ioredis';
import type {
  BlobCommitState,
  CompleteUploadResult,
  CreateUploadResult,
  Lease,
  LeaseFence,
  ManifestLookup,
  ManifestRecord,
  MetadataStore,
  Page,
  PageResult,
  PutManifestResult,
  UploadClaim,
  UploadPolicy,
  UploadSession,
} from './metadata-store.js';
import type { SizedDigest } from '../oci/manifest.js';
import { LuaScript } from '../redis/lua-script.js';
import { RegistryKeys } from './keys.js';
import { isDeadLocalHolder, newLeaseHolder } from './lease-holder.js';
import { LeaseNames } from './metadata-store.js';
import {
  advanceUploadScript,
  claimUploadScript,
  completeUploadScript,
  createUploadScript,
  deleteManifestScript,
  deleteTagScript,
  deleteUploadScript,
  getManifestScript,
  mountBlobScript,
  prepareBlobCommitScript,
  putManifestScript,
  releaseLeaseScript,
  renewLeaseScript,
  repositoryBlobSizeScript,
  tagPageScript,
  takeOverLeaseScript,
} from './redis-scripts.js';

// A blob read (HEAD/GET) refreshes its touchedAt at most this often: garbage collection's grace period is
// far longer, and one write per blob per second costs nothing next to one per request.
const TOUCH_RESOLUTION_MS = 1_000;
const NEVER_TOUCH = -1;

// The record keeps the digest lists for the garbage collector; the scripts compare sizes as the decimal
// strings Redis stores them as.
function uniqueDigests(references: SizedDigest[]): string[] {
  return [...new Set(references.map((reference) => reference.digest))];
}

function sizePairs(references: SizedDigest[]): [string, string][] {
  return references.map((reference) => [reference.digest, String(reference.size)]);
}

/**
 * Redis refuses writes but still serves reads: it cannot persist (MISCONF), the embedded Redis runs read-only
 * after a full disk (NOREPLICAS, see server/redis/embedded-redis.ts), it is a replica (READONLY) or full (OOM).
 */
function isWriteRefused(error: unknown): boolean {
  return error instanceof Error && /^(MISCONF|NOREPLICAS|READONLY|OOM) /.test(error.message);
}

const scripts = {
  putManifest: new LuaScript(putManifestScript),
  getManifest: new LuaScript(getManifestScript),
  deleteTag: new LuaScript(deleteTagScript),
  deleteManifest: new LuaScript(deleteManifestScript),
  completeUpload: new LuaScript(completeUploadScript),
  mountBlob: new LuaScript(mountBlobScript),
  prepareBlobCommit: new LuaScript(prepareBlobCommitScript),
  repositoryBlobSize: new LuaScript(repositoryBlobSizeScript),
  advanceUpload: new LuaScript(advanceUploadScript),
  claimUpload: new LuaScript(claimUploadScript),
  createUpload: new LuaScript(createUploadScript),
  deleteUpload: new LuaScript(deleteUploadScript),
  renewLease: new LuaScript(renewLeaseScript),
  releaseLease: new LuaScript(releaseLeaseScript),
  takeOverLease: new LuaScript(takeOverLeaseScript),
  tagPage: new LuaScript(tagPageScript),
};

export class RedisMetadataStore implements MetadataStore {
  private readonly keys: RegistryKeys;

  // The scripts get the prefix (ARGV[1]) and build their keys from it; everything else gets its keys from `keys`.
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.keys = new RegistryKeys(prefix);
  }

  /**
   * Stamps touchedAt as it looks the blob up, for garbage collection. The stamp is best effort: a Redis
   * that refuses writes (its disk is full) still answers the lookup, so pulls keep working.
   */
  async getRepositoryBlobSize(repository: string, digest: string): Promise<number | undefined> {
    let size: unknown;
    try {
      size = await scripts.repositoryBlobSize.run(this.redis, [this.prefix, repository, digest, TOUCH_RESOLUTION_MS]);
    } catch (error) {
      if (!isWriteRefused(error)) throw error;
      size = await scripts.repositoryBlobSize.run(this.redis, [this.prefix, repository, digest, NEVER_TOUCH]);
    }
    return typeof size === 'string' ? Number(size) : undefined;
  }

  async prepareBlobCommit(digest: string, lease: Lease): Promise<BlobCommitState> {
    const { name, holder } = lease.fence;
    const args = [this.prefix, digest, this.keys.lease(name), holder, lease.ttlMs];
    return (await scripts.prepareBlobCommit.run(this.redis, args)) as BlobCommitState;
  }

  async completeUpload(
    uploadId: string,
    repository: string,
    digest: string,
    size: number,
    expectExisting: boolean,
    release: LeaseFence | undefined,
  ): Promise<CompleteUploadResult> {
    const args = [this.prefix, uploadId, repository, digest, size, Date.now(), expectExisting ? '1' : '0', ...this.leaseArgs(release)];
    return (await scripts.completeUpload.run(this.redis, args)) as CompleteUploadResult;
  }

  async mountBlob(from: string, to: string, digest: string): Promise<number | undefined> {
    const size = await scripts.mountBlob.run(this.redis, [this.prefix, from, to, digest]);
    return typeof size === 'string' ? Number(size) : undefined;
  }

  async unlinkBlob(repository: string, digest: string): Promise<boolean> {
    return (await this.redis.srem(this.keys.repoBlobs(repository), digest)) === 1;
  }

  async createUpload(session: UploadSession, policy: UploadPolicy): Promise<CreateUploadResult> {
    const args = [this.prefix, session.id, session.repository, session.owner, session.storeState, session.startedAt];
    return (await scripts.createUpload.run(this.redis, [
      ...args,
      policy.ttlMs,
      policy.maxPerRepository,
      policy.maxPerOwner,
    ])) as CreateUploadResult;
  }

  async getUpload(uploadId: string): Promise<UploadSession | undefined> {
    return uploadSession(uploadId, await this.redis.hgetall(this.keys.upload(uploadId)));
  }

  async claimUpload(uploadId: string, ttlMs: number): Promise<UploadClaim> {
    const name = LeaseNames.upload(uploadId);
    const key = this.keys.lease(name);
    const holder = newLeaseHolder();
    const [claimed, fields, current] = (await scripts.claimUpload.run(this.redis, [this.prefix, key, holder, ttlMs, uploadId])) as [
      number,
      string[],
      string | undefined,
    ];
    if (claimed === 1) return { lease: this.lease(name, holder, ttlMs), session: uploadSession(uploadId, pairs(fields)) };
    // The rare restart after a crash: the dead holder's lease is taken over, and the session read again under it.
    if (current && isDeadLocalHolder(current) && (await scripts.takeOverLease.run(this.redis, [key, current, holder, ttlMs])) === 1) {
      return { lease: this.lease(name, holder, ttlMs), session: await this.getUpload(uploadId) };
    }
    return { lease: undefined, session: uploadSession(uploadId, pairs(fields)) };
  }

  async advanceUpload(
    uploadId: string,
    fromOffset: number,
    toOffset: number,
    storeState: string,
    policy: UploadPolicy,
    release: LeaseFence | undefined,
  ): Promise<boolean> {
    const result = await scripts.advanceUpload.run(this.redis, [
      this.prefix,
      uploadId,
      fromOffset,
      toOffset,
      storeState,
      Date.now(),
      policy.ttlMs,
      ...this.leaseArgs(release),
    ]);
    return result === 1;
  }

  /** The lease key and holder a script releases; '' names none. */
  private leaseArgs(release: LeaseFence | undefined): string[] {
    return release ? [this.keys.lease(release.name), release.holder] : ['', ''];
  }

  async deleteUpload(uploadId: string): Promise<boolean> {
    return (await scripts.deleteUpload.run(this.redis, [this.prefix, uploadId])) === 1;
  }

  async acquireLease(name: string, ttlMs: number): Promise<Lease | undefined> {
    const holder = newLeaseHolder();
    return (await this.claimLease(this.keys.lease(name), holder, ttlMs)) ? this.lease(name, holder, ttlMs) : undefined;
  }

  private lease(name: string, holder: string, ttlMs: number): Lease {
    const key = this.keys.lease(name);
    return {
      fence: { name, holder },
      ttlMs,
      renew: async () => (await scripts.renewLease.run(this.redis, [key, holder, ttlMs])) === 1,
      release: async () => {
        await scripts.releaseLease.run(this.redis, [key, holder]);
      },
    };
  }

  // Free, or held by a process of this host that died (a crash, then this restart): no need to wait out its TTL.
  private async claimLease(key: string, token: string, ttlMs: number): Promise<boolean> {
    if ((await this.redis.set(key, token, 'PX', ttlMs, 'NX')) === 'OK') return true;
    const holder = await this.redis.get(key);
    if (holder === null || !isDeadLocalHolder(holder)) return false;
    return (await scripts.takeOverLease.run(this.redis, [key, holder, token, ttlMs])) === 1;
  }

  async putManifest(record: ManifestRecord): Promise<PutManifestResult> {
    const result = (await scripts.putManifest.run(this.redis, [
      this.prefix,
      record.repository,
      record.digest,
      record.mediaType,
      record.content,
      record.tag ?? '',
      record.subject ?? '',
      record.referrerDescriptor,
      JSON.stringify(uniqueDigests(record.requiredBlobs)),
      JSON.stringify(uniqueDigests(record.requiredManifests)),
      JSON.stringify(sizePairs(record.requiredBlobs)),
      JSON.stringify(sizePairs(record.requiredManifests)),
      record.mediaTypeDeclared ? '1' : '0',
    ])) as string[];
    const [outcome, digest = '', declaredSize, storedSize] = result;
    if (outcome === 'missing') return { outcome: 'missing', digest };
    if (outcome === 'size-mismatch')
      return { outcome: 'size-mismatch', digest, declaredSize: Number(declaredSize), storedSize: Number(storedSize) };
    return { outcome: 'stored' };
  }

  async getManifest(repository: string, reference: { tag: string } | { digest: string }): Promise<ManifestLookup> {
    const byDigest = 'digest' in reference;
    const result = (await scripts.getManifest.runBuffer(this.redis, [
      this.prefix,
      repository,
      byDigest ? reference.digest : reference.tag,
      byDigest ? '1' : '0',
    ])) as Buffer[];
    const status = result[0]?.toString();
    if (status === 'found') {
      const [, digest, mediaType, content] = result as [Buffer, Buffer, Buffer, Buffer];
      return { found: true, manifest: { digest: digest.toString(), mediaType: mediaType.toString(), content } };
    }
    return { found: false, repositoryKnown: status === 'unknown-manifest' };
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    return (await scripts.deleteTag.run(this.redis, [this.prefix, repository, tag])) === 1;
  }

  async deleteManifest(repository: string, digest: string): Promise<boolean> {
    return (await scripts.deleteManifest.run(this.redis, [this.prefix, repository, digest])) === 1;
  }

  async listTags(repository: string, page: Page): Promise<PageResult | undefined> {
    const count = page.limit === 0 ? 0 : page.limit + 1;
    const items = await scripts.tagPage.run(this.redis, [this.prefix, repository, pageStart(page), count]);
    return Array.isArray(items) ? pageResult(items as string[], page) : undefined;
  }

  listRepositories(page: Page): Promise<PageResult> {
    return this.pageOf(this.keys.repositories(), page);
  }

  listReferrers(repository: string, subject: string): Promise<string[]> {
    return this.redis.hvals(this.keys.repoReferrers(repository, subject));
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => undefined);
  }

  // Sorted sets with equal scores order members bytewise, which is the lexical order the spec asks for;
  // ZRANGEBYLEX from `after` costs O(log N + page) however large the set is.
  private async pageOf(key: string, page: Page): Promise<PageResult> {
    if (page.limit === 0) return { items: [], more: false };
    return pageResult(await this.redis.zrangebylex(key, pageStart(page), '+', 'LIMIT', 0, page.limit + 1), page);
  }
}

function uploadSession(uploadId: string, fields: Record<string, string>): UploadSession | undefined {
  if (!fields.repository) return undefined;
  return {
    id: uploadId,
    repository: fields.repository,
    owner: fields.owner ?? '',
    offset: Number(fields.offset),
    storeState: fields.storeState ?? '',
    startedAt: Number(fields.startedAt),
    updatedAt: Number(fields.updatedAt),
  };
}

/** A flat HGETALL reply of a script ([field, value, ...]) as an object. */
function pairs(flat: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
  return fields;
}

function pageStart(page: Page): string {
  return page.after ? `(${page.after}` : '-';
}

/** One item more than the page is asked for, to know whether more follow. */
function pageResult(items: string[], page: Page): PageResult {
  const more = items.length > page.limit;
  return { items: more ? items.slice(0, page.limit) : items, more };
}
