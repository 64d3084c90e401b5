import test, { type ExecutionContext } from 'ava';
import { assertRegistryError, fetchUrl, readBytes, request, serverErrorLines } from '../helpers/http-client.js';
import {
  blobOf,
  makeBlob,
  patchChunk,
  postBlob,
  pushBlobInChunks,
  startUpload,
  uniqueRepo,
  withDigest,
  type Blob,
} from '../helpers/oci-content.js';
import type { RegistryProcess } from '../helpers/registry-process.js';
import { filesystemBackend, s3Backend, type StorageBackend } from '../helpers/storage-backends.js';

// The same behaviours, defined once, for every store. The S3 registries use the smallest part size S3
// allows (5 MiB), so a 12 MiB blob spans three segments; one S3 server lacks UploadPartCopy, as some
// S3-compatible servers do, so blobs there are assembled by sending the segments through the registry.
const MiB = 1024 * 1024;
// Pushes of a blob the registry already holds, racing reads of it (docker pushes a shared base layer again).
const REPUSHES = 20;
const backends: StorageBackend[] = [
  filesystemBackend(),
  s3Backend('s3 (redirect)', { redirect: true }),
  s3Backend('s3 (proxy)', { redirect: false }),
  s3Backend('s3 (no UploadPartCopy)', { redirect: false }, { uploadPartCopy: false }),
];
const registries = new Map<StorageBackend, RegistryProcess>();

test.before(async () => {
  await Promise.all(backends.map(async (backend) => registries.set(backend, await backend.startRegistry())));
});

test.after('no request made a registry log an internal error', (t) => {
  for (const [backend, registry] of registries) t.deepEqual(serverErrorLines(registry.logs), [], backend.name);
});

test.after.always(async () => {
  await Promise.all([...registries.values()].map((registry) => registry.destroy()));
  await Promise.all(backends.map((backend) => backend.stop()));
});

/** GETs a blob (following a redirect to the store), optionally a range of it. */
async function getBlob(registry: RegistryProcess, repo: string, digest: string, range?: string): Promise<Response> {
  return request(registry.url, `/v2/${repo}/blobs/${digest}`, range ? { headers: { Range: range } } : {});
}

async function assertBlobReadsBack(t: ExecutionContext, registry: RegistryProcess, repo: string, blob: Blob): Promise<void> {
  const response = await getBlob(registry, repo, blob.digest);
  t.is(response.status, 200);
  t.is(response.headers.get('content-length'), String(blob.size));
  t.true((await readBytes(response)).equals(blob.bytes), 'bytes read back differ from the bytes pushed');
}

for (const backend of backends) {
  const registry = () => registries.get(backend)!;

  test(`${backend.name}: a blob pushed in one POST reads back byte-identical and HEAD reports its size and digest`, async (t) => {
    const repo = uniqueRepo('storage');
    const blob = makeBlob(100_000);
    const post = await postBlob(registry().url, repo, blob);
    t.is(post.status, 201);
    t.is(post.headers.get('docker-content-digest'), blob.digest);

    const head = await request(registry().url, `/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' });
    t.is(head.status, 200);
    t.is(head.headers.get('content-length'), String(blob.size));
    t.is(head.headers.get('docker-content-digest'), blob.digest);
    await assertBlobReadsBack(t, registry(), repo, blob);
  });

  test(`${backend.name}: a blob pushed again while clients read it is always served whole`, async (t) => {
    const repo = uniqueRepo('storage');
    const blob = makeBlob(MiB);
    t.is((await postBlob(registry().url, repo, blob)).status, 201);
    const statuses: string[] = [];
    let pushing = true;
    const reading = (async () => {
      for (let round = 0; pushing && round < 500; round++) {
        const response = await getBlob(registry(), repo, blob.digest);
        const bytes = await readBytes(response).catch(() => Buffer.alloc(0));
        if (response.status !== 200 || !bytes.equals(blob.bytes)) statuses.push(`${response.status} with ${bytes.length} bytes`);
      }
    })();
    for (let push = 0; push < REPUSHES; push++) t.is((await postBlob(registry().url, repo, blob)).status, 201);
    pushing = false;
    await reading;
    t.deepEqual(statuses, [], 'reads during the re-pushes that were not the whole blob');
  });

  test(`${backend.name}: an empty blob pushed in one POST reads back empty`, async (t) => {
    const repo = uniqueRepo('storage');
    const blob = blobOf(Buffer.alloc(0));
    t.is((await postBlob(registry().url, repo, blob)).status, 201);
    await assertBlobReadsBack(t, registry(), repo, blob);
  });

  test(`${backend.name}: a blob pushed in chunks that straddle segment boundaries reads back byte-identical, with nothing left of the upload`, async (t) => {
    const repo = uniqueRepo('storage');
    const blob = makeBlob(12 * MiB + 12_345);
    const { location, id } = await startUpload(registry().url, repo);
    const chunks = [3 * MiB + 1, 4 * MiB, 5 * MiB - 1, 12_345];
    let offset = 0;
    for (const size of chunks) {
      const response = await patchChunk(location, blob.bytes.subarray(offset, offset + size), offset);
      t.is(response.status, 202);
      offset += size;
      t.is(response.headers.get('range'), `0-${offset - 1}`);
    }
    const put = await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' });
    t.is(put.status, 201);
    await assertBlobReadsBack(t, registry(), repo, blob);
    t.deepEqual(await backend.uploadLeftovers(registry(), id, [blob.digest]), []);
  });

  test(`${backend.name}: Range requests answer 206 with exactly the requested bytes`, async (t) => {
    const repo = uniqueRepo('storage');
    const blob = makeBlob(6 * MiB);
    t.is((await pushBlobInChunks(registry().url, repo, blob, [6 * MiB])).status, 201);
    for (const [header, start, end] of [
      ['bytes=100-199', 100, 199],
      [`bytes=${5 * MiB - 10}-${5 * MiB + 9}`, 5 * MiB - 10, 5 * MiB + 9],
      [`bytes=${6 * MiB - 50}-`, 6 * MiB - 50, 6 * MiB - 1],
    ] as const) {
      const response = await getBlob(registry(), repo, blob.digest, header);
      t.is(response.status, 206, header);
      t.is(response.headers.get('content-range'), `bytes ${start}-${end}/${blob.size}`, header);
      t.true((await readBytes(response)).equals(blob.bytes.subarray(start, end + 1)), header);
    }
  });

  test(`${backend.name}: a PUT with the wrong digest answers 400 DIGEST_INVALID and leaves no blob and no upload behind`, async (t) => {
    const repo = uniqueRepo('storage');
    const blob = makeBlob(6 * MiB);
    const claimed = makeBlob(16);
    const { location, id } = await startUpload(registry().url, repo);
    t.is((await patchChunk(location, blob.bytes, 0)).status, 202);
    await assertRegistryError(t, await fetchUrl(withDigest(location, claimed.digest), { method: 'PUT' }), 400, 'DIGEST_INVALID');

    for (const digest of [blob.digest, claimed.digest]) {
      t.is((await request(registry().url, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status, 404);
      t.false(await backend.hasBlob(registry(), digest), `${digest} is in storage`);
    }
    t.deepEqual(await backend.uploadLeftovers(registry(), id, [blob.digest, claimed.digest]), []);
    t.is((await fetchUrl(location)).status, 404, 'the upload session is gone');
  });

  test(`${backend.name}: a cancelled upload answers 404 afterwards and leaves nothing in storage`, async (t) => {
    const repo = uniqueRepo('storage');
    const blob = makeBlob(7 * MiB);
    const { location, id } = await startUpload(registry().url, repo);
    t.is((await patchChunk(location, blob.bytes, 0)).status, 202);
    t.is((await fetchUrl(location, { method: 'DELETE' })).status, 204);

    await assertRegistryError(t, await fetchUrl(location), 404, 'BLOB_UPLOAD_UNKNOWN');
    await assertRegistryError(t, await patchChunk(location, Buffer.from('more'), 7 * MiB), 404, 'BLOB_UPLOAD_UNKNOWN');
    t.deepEqual(await backend.uploadLeftovers(registry(), id, [blob.digest]), []);
    t.false(await backend.hasBlob(registry(), blob.digest));
  });

  for (const planted of ['zeros of the same size', 'bytes of another size'] as const) {
    test(`${backend.name}: ${planted} found at a blob's address are replaced by a verified upload and pulls return the pushed bytes`, async (t) => {
      const repo = uniqueRepo('storage');
      const blob = makeBlob(6 * MiB + 1);
      await backend.plantBlob(
        registry(),
        blob.digest,
        planted === 'zeros of the same size' ? Buffer.alloc(blob.size) : Buffer.from('not the blob'),
      );
      t.is((await pushBlobInChunks(registry().url, repo, blob, [MiB, 5 * MiB + 1])).status, 201);
      await assertBlobReadsBack(t, registry(), repo, blob);
      t.is((await postBlob(registry().url, uniqueRepo('storage'), blob)).status, 201);
      await assertBlobReadsBack(t, registry(), repo, blob);
    });
  }

  test(`${backend.name}: an upload interrupted by a SIGKILL finishes on the restarted registry and reads back byte-identical`, async (t) => {
    const first = await backend.startRegistry();
    let restarted: RegistryProcess | undefined;
    try {
      const repo = uniqueRepo('storage');
      const blob = makeBlob(11 * MiB + 3);
      const split = 6 * MiB + 1;
      const { location } = await startUpload(first.url, repo);
      t.is((await patchChunk(location, blob.bytes.subarray(0, split), 0)).status, 202);
      await first.stop('SIGKILL');

      restarted = await backend.startRegistry({ dataDir: first.dataDir });
      const resumed = new URL(`${location.pathname}${location.search}`, restarted.url);
      t.is((await patchChunk(resumed, blob.bytes.subarray(split), split)).status, 202);
      t.is((await fetchUrl(withDigest(resumed, blob.digest), { method: 'PUT' })).status, 201);
      await assertBlobReadsBack(t, restarted, repo, blob);
      t.deepEqual(serverErrorLines(restarted.logs), []);
    } finally {
      await restarted?.destroy();
      await first.destroy();
    }
  });
}
