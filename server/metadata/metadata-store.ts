import type { SizedDigest } from '../oci/manifest.js';

/** The registry's metadata: manifests, tags, repositories, referrers, blob links and upload sessions. */

export interface StoredManifest {
  digest: string;
  mediaType: string;
  content: Buffer;
}

export type ManifestLookup = { found: true; manifest: StoredManifest } | { found: false; repositoryKnown: boolean };

export interface ManifestRecord {
  repository: string;
  digest: string;
  mediaType: string;
  /**
   * False when the body has no mediaType and the push's Content-Type chose it: the same bytes may then be
   * another type in another repository, so the type is kept per repository.
   */
  mediaTypeDeclared: boolean;
  content: Buffer;
  tag?: string;
  /** The digest named by the manifest's `subject`, if any. */
  subject?: string;
  /** The descriptor this manifest appears as in its subject's referrers listing. */
  referrerDescriptor: string;
  /** Blobs that must be linked to the repository, with the size stored for them, for the manifest to be accepted. */
  requiredBlobs: SizedDigest[];
  /** Manifests that must exist in the repository, with exactly these sizes, for the manifest to be accepted. */
  requiredManifests: SizedDigest[];
}

export type BlobCommitState = 'new' | 'existing' | 'deleting' | 'lease-lost';
export type CompleteUploadResult = 'ok' | 'unknown-upload' | 'collected';

export type CreateUploadResult = 'ok' | 'repository-full' | 'owner-full';

/** How long an idle upload session lives and how many may be open at once. */
export interface UploadPolicy {
  /** A session that receives nothing this long expires; 0: never. */
  ttlMs: number;
  maxPerRepository: number;
  maxPerOwner: number;
}

export type PutManifestResult =
  | { outcome: 'stored' }
  | { outcome: 'missing'; digest: string }
  | { outcome: 'size-mismatch'; digest: string; declaredSize: number; storedSize: number };

export interface UploadSession {
  id: string;
  repository: string;
  /** Whose upload it counts as: `user:<account>`, or `address:<client address>` for anonymous pushes. */
  owner: string;
  offset: number;
  storeState: string;
  startedAt: number;
  updatedAt: number;
}

/** The upload's lease if it was free (else undefined: another request holds it) and its session, if any. */
export interface UploadClaim {
  lease: Lease | undefined;
  session: UploadSession | undefined;
}

export interface Page {
  /** Exclusive lower bound, as the spec's `last` parameter. */
  after?: string;
  limit: number;
}

export interface PageResult {
  items: string[];
  /** True when more items follow this page. */
  more: boolean;
}

/** Who holds which lease: what a fenced write checks, atomically with itself, before it changes anything. */
export interface LeaseFence {
  name: string;
  holder: string;
}

/** A time-limited exclusive claim on a name, shared by all replicas. */
export interface Lease {
  readonly fence: LeaseFence;
  /** How long a renewal extends it by. */
  readonly ttlMs: number;
  /** Extends the lease; false if it was lost (expired and taken by someone else). */
  renew(): Promise<boolean>;
  release(): Promise<void>;
}

export interface MetadataStore {
  /** The size of a blob the repository may see; also marks the blob as recently used for garbage collection. */
  getRepositoryBlobSize(repository: string, digest: string): Promise<number | undefined>;
  /**
   * Called before an upload's bytes are moved to their content address, renewing the upload's `lease` in the
   * same step (an irreversible step follows: a separate renewal would cost another round trip and, under
   * appendfsync always, another fsync). 'lease-lost': the lease is no longer held, and nothing else is done.
   * 'deleting': garbage collection is removing this digest's bytes right now; 'existing' (now protected from
   * collection) or 'new' otherwise.
   */
  prepareBlobCommit(digest: string, lease: Lease): Promise<BlobCommitState>;
  /**
   * Records a stored blob and links it to the repository, atomically with ending the upload session.
   * `expectExisting`: prepareBlobCommit said 'existing'. 'collected' when garbage collection removed the
   * digest since then, so the bytes the store kept may be gone: the upload must be retried. Any other
   * outcome also releases `release`, the upload's lease, in the same step.
   */
  completeUpload(
    uploadId: string,
    repository: string,
    digest: string,
    size: number,
    expectExisting: boolean,
    release: LeaseFence | undefined,
  ): Promise<CompleteUploadResult>;
  /** Links a blob visible in `from` to `to`; returns its size, or undefined if `from` cannot see it. */
  mountBlob(from: string, to: string, digest: string): Promise<number | undefined>;
  unlinkBlob(repository: string, digest: string): Promise<boolean>;

  /** Opens a session unless its repository or owner already has `policy`'s maximum of open sessions. */
  createUpload(session: UploadSession, policy: UploadPolicy): Promise<CreateUploadResult>;
  getUpload(uploadId: string): Promise<UploadSession | undefined>;
  /** Claims the upload's lease (LeaseNames.upload) and reads its session in one step. */
  claimUpload(uploadId: string, ttlMs: number): Promise<UploadClaim>;
  /**
   * Compare-and-set of the offset, restarting the session's TTL: false if another request moved it first.
   * Releases `release`, the upload's lease, in the same step whatever the outcome.
   */
  advanceUpload(
    uploadId: string,
    fromOffset: number,
    toOffset: number,
    storeState: string,
    policy: UploadPolicy,
    release: LeaseFence | undefined,
  ): Promise<boolean>;
  deleteUpload(uploadId: string): Promise<boolean>;
  acquireLease(name: string, ttlMs: number): Promise<Lease | undefined>;

  putManifest(record: ManifestRecord): Promise<PutManifestResult>;
  getManifest(repository: string, reference: { tag: string } | { digest: string }): Promise<ManifestLookup>;
  deleteTag(repository: string, tag: string): Promise<boolean>;
  deleteManifest(repository: string, digest: string): Promise<boolean>;
  /** Undefined when the repository is unknown. */
  listTags(repository: string, page: Page): Promise<PageResult | undefined>;
  listRepositories(page: Page): Promise<PageResult>;
  /** Referrer descriptors (JSON strings) of a subject within a repository. */
  listReferrers(repository: string, subject: string): Promise<string[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The leases the registry takes (MetadataStore.acquireLease): one name per thing only one process may do at a time. */
export const LeaseNames = {
  gc: 'gc',
  upload: (uploadId: string) => `upload:${uploadId}`,
  webhook: (endpoint: string) => `webhook:${endpoint}`,
};
