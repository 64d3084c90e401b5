import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { CodedError } from '../../platform/errors.js';
import { GarbageCollector } from '../../server/gc/collector.js';
import { BlobCommitGuard } from '../../server/gc/commit-guard.js';
import type { GcOptions } from '../../server/gc/gc-run.js';
import { RedisGcStore } from '../../server/metadata/redis-gc-store.js';
import { RedisMetadataStore } from '../../server/metadata/redis-metadata-store.js';
import { digestOf } from '../../oci/digest.js';
import { UploadService } from '../../server/services/upload-service.js';
import type { BlobStore, ChunkReceiver, UploadHandle } from '../../server/storage/blob-store.js';
import { FilesystemBlobStore } from '../../server/storage/filesystem/filesystem-store.js';
import { S3BlobStore } from '../../server/storage/s3/s3-store.js';
import { makeBlob, uniqueRepo, type Blob } from '../helpers/oci-content.js';
import { RedisServer } from '../helpers/redis-server.js';
import { S3Server } from '../helpers/s3-server.js';

// The upload service in this process, on a real redis-server and on a real filesystem or s3rver store. A
// store wrapper stands in for the instants that matter: it pauses a commit after the digest was verified
// and before the bytes move (a DELETE then races it), or stops it right after the move, before the record
// (a crash there).
const MiB = 1024 * 1024;
const logger = pino({ level: 'silent' });

type BackendName = 'filesystem' | 's3';

let redisServer: RedisServer;
let redis: Redis;
let s3: S3Server;
let fsRoot: string;

test.before(async () => {
  [redisServer, s3, fsRoot] = await Promise.all([RedisServer.start(), S3Server.start(), mkdtemp(path.join(tmpdir(), 'berth-commit-'))]);
  redis = redisServer.client();
});

// Each test has a store of its own (a directory, an S3 prefix): a collection in one test sees only its bytes.
async function newStore(backend: BackendName, name: string): Promise<BlobStore> {
  if (backend === 's3') {
    const env = s3.registryEnv();
    const config = {
      bucket: env.BERTH_STORAGE__S3__BUCKET!,
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      prefix: name,
      credentials: {
        accessKeyId: env.BERTH_STORAGE__S3__CREDENTIALS__ACCESS_KEY_ID!,
        secretAccessKey: env.BERTH_STORAGE__S3__CREDENTIALS__SECRET_ACCESS_KEY!,
      },
      partSize: 5 * MiB,
      redirect: { enabled: false, expirySeconds: 60 },
      rangedReads: { enabled: true, minBytes: 64 * MiB, partSize: 8 * MiB, concurrency: 4 },
      maxAttempts: 3,
      requestTimeoutMs: 30_000,
    };
    return new S3BlobStore(config, logger);
  }
  const store = new FilesystemBlobStore(path.join(fsRoot, name));
  await store.init();
  return store;
}

/** Makes a blob's file look last written `ms` ago. */
async function age(name: string, digest: string, ms: number): Promise<void> {
  const past = new Date(Date.now() - ms);
  await utimes(path.join(fsRoot, name, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7)), past, past);
}

test.after.always(async () => {
  redis?.disconnect();
  await Promise.all([redisServer?.stop(), s3?.stop(), fsRoot && rm(fsRoot, { recursive: true, force: true })]);
});

type Paused = { reached: () => void; release: Promise<void> };

/**
 * A store whose next commit or abort can be held at its start (after the service verified the digest, before
 * any byte moves), and whose commits can fail right after the move (`crashAfterMove`).
 */
class HookedStore implements BlobStore {
  readonly kind = 'hooked';
  private readonly paused = new Map<'commit' | 'abort', Paused>();
  crashAfterMove = false;

  constructor(private readonly inner: BlobStore) {}

  /** `reached` resolves once the operation waits; it proceeds when `release()` is called. */
  pauseNext(operation: 'commit' | 'abort'): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    this.paused.set(operation, { reached, release: new Promise<void>((resolve) => (release = resolve)) });
    return { reached: reachedPromise, release };
  }

  private async holdIfPaused(operation: 'commit' | 'abort'): Promise<void> {
    const paused = this.paused.get(operation);
    this.paused.delete(operation);
    if (paused) {
      paused.reached();
      await paused.release;
    }
  }

  async commitUpload(upload: UploadHandle, digest: string): Promise<void> {
    await this.holdIfPaused('commit');
    await this.inner.commitUpload(upload, digest);
    if (this.crashAfterMove) throw new Error('simulated crash between the move and the record');
  }

  async abortUpload(upload: UploadHandle): Promise<void> {
    await this.holdIfPaused('abort');
    await this.inner.abortUpload(upload);
  }

  createUpload = (id: string) => this.inner.createUpload(id);
  writeUpload = (upload: UploadHandle, source: Readable, received: ChunkReceiver) => this.inner.writeUpload(upload, source, received);
  readUpload = (upload: UploadHandle) => this.inner.readUpload(upload);
  hasUpload = (upload: UploadHandle) => this.inner.hasUpload(upload);
  openBlob = (digest: string) => this.inner.openBlob(digest);
  openBlobFile = (digest: string) => this.inner.openBlobFile(digest);
  redirectUrl = (digest: string) => this.inner.redirectUrl(digest);
  deleteBlob = (digest: string) => this.inner.deleteBlob(digest);
  blobSize = (digest: string) => this.inner.blobSize(digest);
  listBlobs = () => this.inner.listBlobs();
  storedUploads = () => this.inner.storedUploads();
}

/** Metadata whose next completeUpload first lets `collect` run: a collection racing an upload's commit. */
class CollectingBeforeRecord extends RedisMetadataStore {
  collected = false;

  constructor(
    client: Redis,
    prefix: string,
    private readonly collect: () => Promise<unknown>,
  ) {
    super(client, prefix);
  }

  override async completeUpload(
    ...args: Parameters<RedisMetadataStore['completeUpload']>
  ): ReturnType<RedisMetadataStore['completeUpload']> {
    if (!this.collected) {
      this.collected = true;
      await this.collect();
    }
    return super.completeUpload(...args);
  }
}

const TEST_UPLOAD_POLICY = { ttlMs: 0, maxPerRepository: 1000, maxPerOwner: 1000 };

interface Harness {
  name: string;
  store: HookedStore;
  metadata: RedisMetadataStore;
  gc: RedisGcStore;
  /** A fresh service over the same state: what a restarted (or another) registry process would be. */
  service(): UploadService;
}

async function harness(backend: BackendName): Promise<Harness> {
  const name = `t${Math.random().toString(36).slice(2)}`;
  const metadata = new RedisMetadataStore(redis, `${name}:`);
  const gc = new RedisGcStore(redis, `${name}:`);
  const store = new HookedStore(await newStore(backend, name));
  return {
    name,
    store,
    metadata,
    gc,
    service: () => new UploadService(metadata, store, logger, new BlobCommitGuard(metadata, gc, store), TEST_UPLOAD_POLICY),
  };
}

async function startWithBytes(service: UploadService, repo: string, blob: Blob): Promise<string> {
  const session = await service.start(repo, undefined);
  await service.append(repo, session.id, { source: Readable.from([blob.bytes]), length: blob.size });
  return session.id;
}

/** What the address of `digest` holds: nothing, or bytes that must hash to it. */
async function assertAddressHonest(t: ExecutionContext, store: BlobStore, digest: string): Promise<'empty' | 'blob'> {
  if ((await store.blobSize(digest)) === undefined) return 'empty';
  t.is(digestOf(await readAll(await store.openBlob(digest))), digest, 'the bytes at a content address do not hash to it');
  return 'blob';
}

/** A settled request as a client would see it: 201/204 or the error's status; a non-registry error is a 500. */
async function outcome(work: Promise<unknown>): Promise<number> {
  try {
    await work;
    return 200;
  } catch (error) {
    return error instanceof CodedError ? error.status : 500;
  }
}

async function readAll(source: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function gcOptions(graceMs: number): GcOptions {
  return { dryRun: false, graceMs, uploadMaxAgeMs: 86_400_000, deleteUntagged: false, batchSize: 100, batchPauseMs: 0, restRatio: 0 };
}

for (const name of ['filesystem', 's3'] as const) {
  test(`${name}: a DELETE that arrives while a PUT is paused between verification and the move waits for it; the blob is intact and the DELETE is 404`, async (t) => {
    const h = await harness(name);
    const service = h.service();
    const repo = uniqueRepo('race');
    const blob = makeBlob(MiB + 5);
    const id = await startWithBytes(service, repo, blob);
    const pause = h.store.pauseNext('commit');
    const put = outcome(service.complete(repo, id, blob.digest));
    await pause.reached;
    const cancel = outcome(service.cancel(repo, id));
    await new Promise((resolve) => setTimeout(resolve, 300));
    pause.release();
    t.is(await put, 200);
    t.is(await cancel, 404);
    t.is(await assertAddressHonest(t, h.store, blob.digest), 'blob');
    t.is(await h.metadata.getRepositoryBlobSize(repo, blob.digest), blob.size);
  });

  test(`${name}: a PUT that arrives while a DELETE of its upload is removing the bytes is a 4xx and leaves nothing at the address`, async (t) => {
    const h = await harness(name);
    const service = h.service();
    const repo = uniqueRepo('race');
    const blob = makeBlob(64 * 1024);
    const id = await startWithBytes(service, repo, blob);
    // The DELETE holds the lease while it removes the bytes; the PUT arrives then, and again once it is done.
    const pause = h.store.pauseNext('abort');
    const cancel = outcome(service.cancel(repo, id));
    await pause.reached;
    const during = outcome(service.complete(repo, id, blob.digest));
    await new Promise((resolve) => setTimeout(resolve, 300));
    pause.release();
    t.is(await cancel, 200);
    t.true([404, 416].includes(await during), `PUT during the DELETE answered ${await during}`);
    t.is(await outcome(service.complete(repo, id, blob.digest)), 404);
    t.is(await assertAddressHonest(t, h.store, blob.digest), 'empty');
  });

  test(`${name}: PUT and DELETE of the same upload sent together many times never answer 5xx and never leave foreign bytes at an address`, async (t) => {
    const h = await harness(name);
    const repo = uniqueRepo('race');
    const tries = name === 'filesystem' ? 40 : 12;
    const statuses = new Map<string, number>();
    for (let attempt = 0; attempt < tries; attempt++) {
      // Two services, as two registry replicas: nothing in memory is shared between the PUT and the DELETE.
      const [putter, canceller] = [h.service(), h.service()];
      const blob = makeBlob(attempt % 3 === 0 ? 0 : 4096 + attempt);
      const id = await startWithBytes(putter, repo, blob);
      // Which request is sent first alternates, so both orders are tried.
      const sendPut = () => outcome(putter.complete(repo, id, blob.digest));
      const sendCancel = () => outcome(canceller.cancel(repo, id));
      const [put, cancel] =
        attempt % 2 === 0
          ? await Promise.all([sendPut(), sendCancel()])
          : ((await Promise.all([sendCancel(), sendPut()])).reverse() as [number, number]);
      const key = `PUT ${put} / DELETE ${cancel}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      t.true(put < 500 && cancel < 500, key);
      const address = await assertAddressHonest(t, h.store, blob.digest);
      if (put === 200) t.is(address, 'blob');
    }
    t.log(Object.fromEntries(statuses));
  });

  test(`${name}: after a crash between the move and the record, the retried PUT completes from the bytes at the address`, async (t) => {
    const h = await harness(name);
    const repo = uniqueRepo('crash');
    const blob = makeBlob(6 * MiB + 3);
    const id = await startWithBytes(h.service(), repo, blob);
    h.store.crashAfterMove = true;
    t.is(await outcome(h.service().complete(repo, id, blob.digest)), 500);
    h.store.crashAfterMove = false;
    t.is(await h.metadata.getRepositoryBlobSize(repo, blob.digest), undefined, 'the crash left a record');
    t.true(await h.metadata.getUpload(id).then(Boolean), 'the crash ended the session');

    t.is(await h.service().complete(repo, id, blob.digest), blob.digest);
    t.is(await h.metadata.getRepositoryBlobSize(repo, blob.digest), blob.size);
    t.is(await assertAddressHonest(t, h.store, blob.digest), 'blob');
    t.is(await h.metadata.getUpload(id), undefined);
  });

  test(`${name}: after a crash between the move and the record, a retried PUT naming another digest or with a body is 404 BLOB_UPLOAD_UNKNOWN`, async (t) => {
    const h = await harness(name);
    const repo = uniqueRepo('crash');
    const blob = makeBlob(1000);
    const [first, second] = [await startWithBytes(h.service(), repo, blob), await startWithBytes(h.service(), repo, blob)];
    h.store.crashAfterMove = true;
    await outcome(h.service().complete(repo, first, blob.digest));
    await outcome(h.service().complete(repo, second, blob.digest));
    h.store.crashAfterMove = false;
    const other = makeBlob(1000);
    await t.throwsAsync(h.service().complete(repo, first, other.digest), { instanceOf: CodedError, message: /start the upload again/ });
    const withBody = h.service().complete(repo, second, blob.digest, { source: Readable.from([Buffer.from('x')]), length: 1 });
    const error = await t.throwsAsync(withBody, { instanceOf: CodedError });
    t.is(error?.code, 'BLOB_UPLOAD_UNKNOWN');
    t.is(error?.status, 404);
  });

  test(`${name}: garbage collection reclaims bytes a crashed commit left without a record`, async (t) => {
    const h = await harness(name);
    const service = h.service();
    const repo = uniqueRepo('orphan');
    const orphan = makeBlob(200_000);
    const id = await startWithBytes(service, repo, orphan);
    h.store.crashAfterMove = true;
    await outcome(service.complete(repo, id, orphan.digest));
    h.store.crashAfterMove = false;
    t.is(await h.store.blobSize(orphan.digest), orphan.size);

    const collector = new GarbageCollector(h.metadata, h.gc, h.store, logger);
    const report = await collector.run(gcOptions(0));
    t.true((report?.blobsDeleted ?? 0) >= 1);
    t.is(await h.store.blobSize(orphan.digest), undefined, 'the orphan bytes are still in the store');
    // The session now has nothing to complete from: the client is told to start over.
    t.is(await outcome(h.service().complete(repo, id, orphan.digest)), 404);
  });

  test(`${name}: a blob pushed again while the collector deletes the stored copy is committed from the new upload and reads back`, async (t) => {
    const h = await harness(name);
    const blob = makeBlob(300_000);
    await h.service().complete('first', await startWithBytes(h.service(), 'first', blob), blob.digest);
    // The collector (grace 0: the blob is in no manifest) runs right after the second upload found the blob
    // recorded and before it recorded itself against it.
    let collectedBlobs = 0;
    const metadata = new CollectingBeforeRecord(redis, `${h.name}:`, async () => {
      collectedBlobs = (await new GarbageCollector(h.metadata, h.gc, h.store, logger).run(gcOptions(0)))?.blobsDeleted ?? 0;
    });
    const service = new UploadService(metadata, h.store, logger, new BlobCommitGuard(metadata, h.gc, h.store), TEST_UPLOAD_POLICY);
    const id = await startWithBytes(service, 'second', blob);

    t.is(await service.complete('second', id, blob.digest), blob.digest);
    t.is(collectedBlobs, 1, 'the collector deleted the stored blob inside the commit');
    t.is(await h.metadata.getRepositoryBlobSize('second', blob.digest), blob.size);
    t.is(await assertAddressHonest(t, h.store, blob.digest), 'blob');
  });
}

test('filesystem: bytes without a record are kept through the grace period, recorded blobs are kept, older orphans go', async (t) => {
  const h = await harness('filesystem');
  const repo = uniqueRepo('orphan');
  const [recent, old, recorded] = [makeBlob(3000), makeBlob(3001), makeBlob(3002)];
  h.store.crashAfterMove = true;
  for (const blob of [recent, old]) await outcome(h.service().complete(repo, await startWithBytes(h.service(), repo, blob), blob.digest));
  h.store.crashAfterMove = false;
  await h.service().complete(repo, await startWithBytes(h.service(), repo, recorded), recorded.digest);
  await age(h.name, old.digest, 2 * 3_600_000);
  await age(h.name, recorded.digest, 2 * 3_600_000);

  await new GarbageCollector(h.metadata, h.gc, h.store, logger).run(gcOptions(3_600_000));
  t.is(await h.store.blobSize(old.digest), undefined);
  t.is(await h.store.blobSize(recent.digest), recent.size);
  t.is(await h.store.blobSize(recorded.digest), recorded.size);
});
