import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertRegistryError, chunkedBody, fetchUrl, rawRequest, readBytes, request } from '../helpers/http-client.js';
import {
  makeBlob,
  patchChunk,
  postBlob,
  pushBlob,
  pushBlobInChunks,
  startUpload,
  uniqueRepo,
  withDigest,
  type Blob,
} from '../helpers/oci-content.js';
import { sharedRegistry } from '../helpers/shared-registry.js';

const registry = sharedRegistry();

const MiB = 1024 * 1024;

async function readBlob(repo: string, blob: Blob): Promise<Response> {
  return request(registry.url, `/v2/${repo}/blobs/${blob.digest}`);
}

async function assertBlobContent(t: ExecutionContext, repo: string, blob: Blob): Promise<void> {
  const response = await readBlob(repo, blob);
  t.is(response.status, 200);
  t.is(response.headers.get('docker-content-digest'), blob.digest);
  t.true((await readBytes(response)).equals(blob.bytes), 'blob bytes differ from what was uploaded');
}

async function uploadStatus(location: URL): Promise<Response> {
  return fetchUrl(location);
}

test('POST to blobs/uploads/ opens an upload: 202 with Location, Range 0-0 and Docker-Upload-UUID', async (t) => {
  const repo = uniqueRepo('upload');
  const response = await request(registry.url, `/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  t.is(response.status, 202);
  const location = response.headers.get('location') ?? '';
  const id = response.headers.get('docker-upload-uuid') ?? '';
  t.truthy(id);
  t.is(location, `/v2/${repo}/blobs/uploads/${id}`);
  t.is(response.headers.get('range'), '0-0');
  t.is(response.headers.get('docker-distribution-api-version'), 'registry/2.0');
});

test('POST with ?digest= and the whole body stores the blob: 201 with the blob Location and Docker-Content-Digest', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(2048);
  const response = await postBlob(registry.url, repo, blob);
  t.is(response.status, 201);
  t.is(response.headers.get('location'), `/v2/${repo}/blobs/${blob.digest}`);
  t.is(response.headers.get('docker-content-digest'), blob.digest);
  await assertBlobContent(t, repo, blob);
});

test('POST with ?digest= that does not match the body is DIGEST_INVALID and stores nothing', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(100);
  const claimed = makeBlob(100);
  const response = await request(registry.url, `/v2/${repo}/blobs/uploads/?digest=${claimed.digest}`, { method: 'POST', body: blob.bytes });
  await assertRegistryError(t, response, 400, 'DIGEST_INVALID');
  t.is((await request(registry.url, `/v2/${repo}/blobs/${claimed.digest}`, { method: 'HEAD' })).status, 404);
  t.is((await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);
});

test('POST with ?mount= and ?from= naming a repository that holds the blob mounts it: 201', async (t) => {
  const source = uniqueRepo('upload');
  const target = uniqueRepo('upload');
  const blob = await pushBlob(registry.url, source, makeBlob(500));
  const response = await request(registry.url, `/v2/${target}/blobs/uploads/?mount=${blob.digest}&from=${source}`, { method: 'POST' });
  t.is(response.status, 201);
  t.is(response.headers.get('location'), `/v2/${target}/blobs/${blob.digest}`);
  t.is(response.headers.get('docker-content-digest'), blob.digest);
  await assertBlobContent(t, target, blob);
});

test('a mount from a repository without the blob falls back to a new upload (202) that works', async (t) => {
  const source = uniqueRepo('upload');
  const target = uniqueRepo('upload');
  await pushBlob(registry.url, source, makeBlob(10));
  const blob = makeBlob(500);
  // The blob exists in the registry, but not in `source`.
  await pushBlob(registry.url, uniqueRepo('upload'), blob);
  const response = await request(registry.url, `/v2/${target}/blobs/uploads/?mount=${blob.digest}&from=${source}`, { method: 'POST' });
  t.is(response.status, 202);
  const location = new URL(response.headers.get('location') ?? '', registry.url);
  t.regex(location.pathname, new RegExp(`^/v2/${target}/blobs/uploads/[^/]+$`));
  t.is(response.headers.get('range'), '0-0');
  t.truthy(response.headers.get('docker-upload-uuid'));
  t.is((await request(registry.url, `/v2/${target}/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404, 'nothing was mounted');
  const put = await fetchUrl(withDigest(location, blob.digest), { method: 'PUT', body: blob.bytes });
  t.is(put.status, 201);
  await assertBlobContent(t, target, blob);
});

test('a mount from an invalid repository name falls back to a new upload (202)', async (t) => {
  const target = uniqueRepo('upload');
  const blob = makeBlob(50);
  const response = await request(registry.url, `/v2/${target}/blobs/uploads/?mount=${blob.digest}&from=Not/A..Valid`, { method: 'POST' });
  t.is(response.status, 202);
  t.truthy(response.headers.get('location'));
  t.truthy(response.headers.get('docker-upload-uuid'));
});

test('a mount with a malformed digest falls back to a new upload (202)', async (t) => {
  const source = uniqueRepo('upload');
  const target = uniqueRepo('upload');
  await pushBlob(registry.url, source, makeBlob(10));
  const response = await request(registry.url, `/v2/${target}/blobs/uploads/?mount=sha256:nothex&from=${source}`, { method: 'POST' });
  t.is(response.status, 202);
  t.truthy(response.headers.get('location'));
});

test('POST to blobs/uploads without the trailing slash also opens an upload', async (t) => {
  const repo = uniqueRepo('upload');
  const response = await request(registry.url, `/v2/${repo}/blobs/uploads`, { method: 'POST' });
  t.is(response.status, 202);
  t.regex(response.headers.get('location') ?? '', new RegExp(`^/v2/${repo}/blobs/uploads/[^/]+$`));
});

test('a mount of a blob deleted from the source repository falls back to a new upload (202)', async (t) => {
  const source = uniqueRepo('upload');
  const target = uniqueRepo('upload');
  const blob = await pushBlob(registry.url, source, makeBlob(100));
  t.is((await request(registry.url, `/v2/${source}/blobs/${blob.digest}`, { method: 'DELETE' })).status, 202);
  const response = await request(registry.url, `/v2/${target}/blobs/uploads/?mount=${blob.digest}&from=${source}`, { method: 'POST' });
  t.is(response.status, 202);
  t.is((await request(registry.url, `/v2/${target}/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);
});

test('a streamed PATCH (no Content-Range) appends and reports Range 0-<offset-1>', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(3000);
  const { location, id } = await startUpload(registry.url, repo);
  const first = await fetchUrl(location, { method: 'PATCH', body: blob.bytes.subarray(0, 1000) });
  t.is(first.status, 202);
  t.is(first.headers.get('range'), '0-999');
  t.is(first.headers.get('docker-upload-uuid'), id);
  t.is(first.headers.get('location'), `/v2/${repo}/blobs/uploads/${id}`);
  const second = await fetchUrl(location, { method: 'PATCH', body: blob.bytes.subarray(1000) });
  t.is(second.status, 202);
  t.is(second.headers.get('range'), '0-2999');
  const put = await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' });
  t.is(put.status, 201);
  t.is(put.headers.get('location'), `/v2/${repo}/blobs/${blob.digest}`);
  t.is(put.headers.get('docker-content-digest'), blob.digest);
  await assertBlobContent(t, repo, blob);
});

test('chunked PATCHes with Content-Range append in order and report the received range', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(100);
  const { location } = await startUpload(registry.url, repo);
  const first = await patchChunk(location, blob.bytes.subarray(0, 40), 0);
  t.is(first.status, 202);
  t.is(first.headers.get('range'), '0-39');
  const second = await patchChunk(location, blob.bytes.subarray(40), 40);
  t.is(second.status, 202);
  t.is(second.headers.get('range'), '0-99');
  const put = await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' });
  t.is(put.status, 201);
  await assertBlobContent(t, repo, blob);
});

test('a blob uploaded in chunks of 1 MiB+7, 333 bytes and 2 MiB reads back byte-identical', async (t) => {
  const repo = uniqueRepo('upload');
  const sizes = [MiB + 7, 333, 2 * MiB];
  const blob = makeBlob(sizes.reduce((a, b) => a + b, 0));
  const put = await pushBlobInChunks(registry.url, repo, blob, sizes);
  t.is(put.status, 201);
  t.is(put.headers.get('docker-content-digest'), blob.digest);
  await assertBlobContent(t, repo, blob);
});

test('a blob uploaded in five uneven chunks reads back byte-identical', async (t) => {
  const repo = uniqueRepo('upload');
  const sizes = [1, 65_537, 3, MiB - 1, 4099];
  const blob = makeBlob(sizes.reduce((a, b) => a + b, 0));
  const put = await pushBlobInChunks(registry.url, repo, blob, sizes);
  t.is(put.status, 201);
  await assertBlobContent(t, repo, blob);
});

test('a chunk that repeats, overlaps or skips ahead of the current offset is 416 with the current Range, and the upload continues', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(30);
  const { location } = await startUpload(registry.url, repo);
  t.is((await patchChunk(location, blob.bytes.subarray(0, 10), 0)).status, 202);

  const cases: Array<[string, Buffer, number]> = [
    ['repeated', blob.bytes.subarray(0, 10), 0],
    ['overlapping', blob.bytes.subarray(5, 15), 5],
    ['out of order', blob.bytes.subarray(20, 30), 20],
  ];
  for (const [what, chunk, start] of cases) {
    const response = await patchChunk(location, chunk, start);
    t.is(response.headers.get('range'), '0-9', what);
    await assertRegistryError(t, response, 416, 'RANGE_INVALID');
  }

  const status = await uploadStatus(location);
  t.is(status.status, 204);
  t.is(status.headers.get('range'), '0-9');
  t.is((await patchChunk(location, blob.bytes.subarray(10), 10)).status, 202);
  t.is((await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' })).status, 201);
  await assertBlobContent(t, repo, blob);
});

test('a first chunk that does not start at 0 is 416 with Range 0-0', async (t) => {
  const repo = uniqueRepo('upload');
  const { location } = await startUpload(registry.url, repo);
  const response = await patchChunk(location, Buffer.alloc(10, 1), 5);
  t.is(response.headers.get('range'), '0-0');
  await assertRegistryError(t, response, 416, 'RANGE_INVALID');
});

test('a malformed Content-Range on PATCH is 416 and leaves the upload unchanged', async (t) => {
  const repo = uniqueRepo('upload');
  const { location } = await startUpload(registry.url, repo);
  t.is((await patchChunk(location, Buffer.alloc(10, 7), 0)).status, 202);
  for (const contentRange of ['abc', '10-', '-19', '10-19/abc', 'bytes=ten-twenty', '19-10']) {
    const response = await fetchUrl(location, { method: 'PATCH', headers: { 'Content-Range': contentRange }, body: Buffer.alloc(10, 8) });
    t.is(response.headers.get('range'), '0-9', contentRange);
    await assertRegistryError(t, response, 416, 'RANGE_INVALID');
  }
  const status = await uploadStatus(location);
  t.is(status.headers.get('range'), '0-9');
});

test('a Content-Length that disagrees with Content-Range is 416 and leaves the upload unchanged', async (t) => {
  const repo = uniqueRepo('upload');
  const { location } = await startUpload(registry.url, repo);
  const response = await fetchUrl(location, {
    method: 'PATCH',
    headers: { 'Content-Range': '0-19', 'Content-Length': '10' },
    body: Buffer.alloc(10, 1),
  });
  t.is(response.headers.get('range'), '0-0');
  await assertRegistryError(t, response, 416, 'RANGE_INVALID');
  const status = await uploadStatus(location);
  t.is(status.headers.get('range'), '0-0');
});

test('PUT ?digest= with the last chunk as its body completes the upload: 201', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(5000);
  const { location } = await startUpload(registry.url, repo);
  t.is((await patchChunk(location, blob.bytes.subarray(0, 4000), 0)).status, 202);
  const put = await fetchUrl(withDigest(location, blob.digest), { method: 'PUT', body: blob.bytes.subarray(4000) });
  t.is(put.status, 201);
  t.is(put.headers.get('location'), `/v2/${repo}/blobs/${blob.digest}`);
  t.is(put.headers.get('docker-content-digest'), blob.digest);
  await assertBlobContent(t, repo, blob);
});

test('PUT ?digest= with a Content-Range last chunk completes the upload', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(500);
  const { location } = await startUpload(registry.url, repo);
  t.is((await patchChunk(location, blob.bytes.subarray(0, 200), 0)).status, 202);
  const put = await fetchUrl(withDigest(location, blob.digest), {
    method: 'PUT',
    headers: { 'Content-Range': '200-499', 'Content-Length': '300' },
    body: blob.bytes.subarray(200),
  });
  t.is(put.status, 201);
  await assertBlobContent(t, repo, blob);
});

test('PUT ?digest= carrying the whole blob on a fresh upload completes it (POST then PUT)', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(1234);
  const { location } = await startUpload(registry.url, repo);
  const put = await fetchUrl(withDigest(location, blob.digest), { method: 'PUT', body: blob.bytes });
  t.is(put.status, 201);
  await assertBlobContent(t, repo, blob);
});

test('PUT with a digest that does not match is DIGEST_INVALID; the blob is not visible and the upload is gone', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(100);
  const wrong = makeBlob(100);
  const { location } = await startUpload(registry.url, repo);
  t.is((await patchChunk(location, blob.bytes, 0)).status, 202);
  const put = await fetchUrl(withDigest(location, wrong.digest), { method: 'PUT' });
  await assertRegistryError(t, put, 400, 'DIGEST_INVALID');
  t.is((await request(registry.url, `/v2/${repo}/blobs/${wrong.digest}`, { method: 'HEAD' })).status, 404);
  t.is((await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);
  await assertRegistryError(t, await uploadStatus(location), 404, 'BLOB_UPLOAD_UNKNOWN');
});

test('PUT without ?digest= is DIGEST_INVALID', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(100);
  const { location } = await startUpload(registry.url, repo);
  t.is((await patchChunk(location, blob.bytes, 0)).status, 202);
  await assertRegistryError(t, await fetchUrl(location, { method: 'PUT' }), 400, 'DIGEST_INVALID');
  t.is((await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);
});

test('GET of an upload answers 204 with its Range, Location and Docker-Upload-UUID', async (t) => {
  const repo = uniqueRepo('upload');
  const { location, id } = await startUpload(registry.url, repo);
  const fresh = await uploadStatus(location);
  t.is(fresh.status, 204);
  t.is(fresh.headers.get('range'), '0-0');
  t.is(fresh.headers.get('location'), `/v2/${repo}/blobs/uploads/${id}`);
  t.is(fresh.headers.get('docker-upload-uuid'), id);
  await patchChunk(location, Buffer.alloc(64, 3), 0);
  const after = await uploadStatus(location);
  t.is(after.status, 204);
  t.is(after.headers.get('range'), '0-63');
});

test('DELETE of an upload answers 204, after which it is BLOB_UPLOAD_UNKNOWN', async (t) => {
  const repo = uniqueRepo('upload');
  const { location } = await startUpload(registry.url, repo);
  await patchChunk(location, Buffer.alloc(64, 3), 0);
  const deleted = await fetchUrl(location, { method: 'DELETE' });
  t.is(deleted.status, 204);
  await assertRegistryError(t, await uploadStatus(location), 404, 'BLOB_UPLOAD_UNKNOWN');
  await assertRegistryError(t, await patchChunk(location, Buffer.alloc(10), 64), 404, 'BLOB_UPLOAD_UNKNOWN');
  await assertRegistryError(t, await fetchUrl(location, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
});

test('an upload that was completed is BLOB_UPLOAD_UNKNOWN afterwards', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(10);
  const { location } = await startUpload(registry.url, repo);
  t.is((await fetchUrl(withDigest(location, blob.digest), { method: 'PUT', body: blob.bytes })).status, 201);
  await assertRegistryError(t, await uploadStatus(location), 404, 'BLOB_UPLOAD_UNKNOWN');
  await assertRegistryError(t, await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' }), 404, 'BLOB_UPLOAD_UNKNOWN');
});

test('an upload id that was never issued is BLOB_UPLOAD_UNKNOWN for GET, PATCH, PUT and DELETE', async (t) => {
  const repo = uniqueRepo('upload');
  await startUpload(registry.url, repo);
  const path = `/v2/${repo}/blobs/uploads/00000000-0000-4000-8000-000000000000`;
  const blob = makeBlob(10);
  await assertRegistryError(t, await request(registry.url, path), 404, 'BLOB_UPLOAD_UNKNOWN');
  await assertRegistryError(t, await request(registry.url, path, { method: 'PATCH', body: blob.bytes }), 404, 'BLOB_UPLOAD_UNKNOWN');
  await assertRegistryError(
    t,
    await request(registry.url, `${path}?digest=${blob.digest}`, { method: 'PUT', body: blob.bytes }),
    404,
    'BLOB_UPLOAD_UNKNOWN',
  );
  await assertRegistryError(t, await request(registry.url, path, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
});

test('an upload id used under a different repository is BLOB_UPLOAD_UNKNOWN and the upload is unaffected', async (t) => {
  const repo = uniqueRepo('upload');
  const other = uniqueRepo('upload');
  const blob = makeBlob(200);
  const { location, id } = await startUpload(registry.url, repo);
  t.is((await patchChunk(location, blob.bytes.subarray(0, 100), 0)).status, 202);
  const foreign = `/v2/${other}/blobs/uploads/${id}`;
  await assertRegistryError(t, await request(registry.url, foreign), 404, 'BLOB_UPLOAD_UNKNOWN');
  await assertRegistryError(
    t,
    await request(registry.url, foreign, { method: 'PATCH', headers: { 'Content-Range': '100-199' }, body: blob.bytes.subarray(100) }),
    404,
    'BLOB_UPLOAD_UNKNOWN',
  );
  await assertRegistryError(
    t,
    await request(registry.url, `${foreign}?digest=${blob.digest}`, { method: 'PUT' }),
    404,
    'BLOB_UPLOAD_UNKNOWN',
  );
  await assertRegistryError(t, await request(registry.url, foreign, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
  t.is((await request(registry.url, `/v2/${other}/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);

  const status = await uploadStatus(location);
  t.is(status.status, 204);
  t.is(status.headers.get('range'), '0-99');
  t.is((await patchChunk(location, blob.bytes.subarray(100), 100)).status, 202);
  t.is((await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' })).status, 201);
  await assertBlobContent(t, repo, blob);
});

test('a sha512 blob can be pushed monolithically', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(3000, 'sha512');
  const response = await postBlob(registry.url, repo, blob);
  t.is(response.status, 201);
  t.is(response.headers.get('docker-content-digest'), blob.digest);
  t.is(response.headers.get('location'), `/v2/${repo}/blobs/${blob.digest}`);
  await assertBlobContent(t, repo, blob);
});

test('a sha512 blob can be pushed in chunks', async (t) => {
  const repo = uniqueRepo('upload');
  const sizes = [MiB + 7, 333, 1000];
  const blob = makeBlob(
    sizes.reduce((a, b) => a + b, 0),
    'sha512',
  );
  const put = await pushBlobInChunks(registry.url, repo, blob, sizes);
  t.is(put.status, 201);
  t.is(put.headers.get('docker-content-digest'), blob.digest);
  await assertBlobContent(t, repo, blob);
});

test('a sha512 digest that does not match the upload is DIGEST_INVALID', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(100, 'sha512');
  const wrong = makeBlob(100, 'sha512');
  const { location } = await startUpload(registry.url, repo);
  t.is((await patchChunk(location, blob.bytes, 0)).status, 202);
  await assertRegistryError(t, await fetchUrl(withDigest(location, wrong.digest), { method: 'PUT' }), 400, 'DIGEST_INVALID');
  t.is((await request(registry.url, `/v2/${repo}/blobs/${wrong.digest}`, { method: 'HEAD' })).status, 404);
});

test('pushing a blob that already exists in the registry to another repository links it there', async (t) => {
  const blob = makeBlob(700);
  const first = uniqueRepo('upload');
  const second = uniqueRepo('upload');
  await pushBlob(registry.url, first, blob);
  const response = await postBlob(registry.url, second, blob);
  t.is(response.status, 201);
  await assertBlobContent(t, second, blob);
  await assertBlobContent(t, first, blob);
});

test('PATCH and PUT bodies sent with chunked transfer encoding (no Content-Length) are appended', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(300_000);
  const { location } = await startUpload(registry.url, repo);
  const patch = await rawRequest(registry.url, {
    method: 'PATCH',
    path: location.pathname,
    headers: ['Transfer-Encoding: chunked'],
    body: chunkedBody(blob.bytes.subarray(0, 1000), blob.bytes.subarray(1000, 100_000)),
  });
  t.is(patch.status, 202);
  t.is(patch.header('range'), '0-99999');
  const put = withDigest(location, blob.digest);
  const done = await rawRequest(registry.url, {
    method: 'PUT',
    path: `${put.pathname}${put.search}`,
    headers: ['Transfer-Encoding: chunked'],
    body: chunkedBody(blob.bytes.subarray(100_000)),
  });
  t.is(done.status, 201);
  t.is(done.header('docker-content-digest'), blob.digest);
  await assertBlobContent(t, repo, blob);
});

test('a monolithic POST with a chunked transfer-encoded body stores the blob', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(70_000);
  const response = await rawRequest(registry.url, {
    method: 'POST',
    path: `/v2/${repo}/blobs/uploads/?digest=${blob.digest}`,
    headers: ['Transfer-Encoding: chunked'],
    body: chunkedBody(blob.bytes.subarray(0, 5), blob.bytes.subarray(5)),
  });
  t.is(response.status, 201);
  await assertBlobContent(t, repo, blob);
});

test('a chunk whose chunked-encoded body is shorter than its Content-Range is refused and the upload is unchanged', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(2000);
  const { location } = await startUpload(registry.url, repo);
  t.is((await patchChunk(location, blob.bytes.subarray(0, 1000), 0)).status, 202);
  const response = await rawRequest(registry.url, {
    method: 'PATCH',
    path: location.pathname,
    headers: ['Transfer-Encoding: chunked', 'Content-Range: 1000-1999'],
    body: chunkedBody(blob.bytes.subarray(1000, 1500)),
  });
  t.true(response.status === 400 || response.status === 416, `status ${response.status}`);
  t.is((await uploadStatus(location)).headers.get('range'), '0-999');
  t.is((await patchChunk(location, blob.bytes.subarray(1000), 1000)).status, 202);
  t.is((await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' })).status, 201);
  await assertBlobContent(t, repo, blob);
});

/** A PATCH whose body is sent in two halves with a pause between, so the request holds the upload for a while. */
function slowPatch(location: URL, chunk: Buffer, start: number, pause: Promise<void>): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = { 'Content-Range': `${start}-${start + chunk.length - 1}`, 'Content-Length': String(chunk.length) };
    const req = http.request(location, { method: 'PATCH', headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
    req.write(chunk.subarray(0, chunk.length / 2));
    void pause.then(() => req.end(chunk.subarray(chunk.length / 2)));
  });
}

test('a PATCH of the next range that arrives while the previous PATCH is still being received waits for it and is accepted', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(2 * MiB);
  const [first, second] = [blob.bytes.subarray(0, MiB), blob.bytes.subarray(MiB)];
  const { location } = await startUpload(registry.url, repo);
  let release = () => undefined as void;
  const firstStatus = slowPatch(location, first, 0, new Promise<void>((resolve) => (release = resolve)));
  await sleep(300);
  const secondResponse = patchChunk(location, second, MiB);
  await sleep(200);
  release();
  t.is(await firstStatus, 202);
  t.is((await secondResponse).status, 202, 'the next chunk waited for the lease rather than being refused as busy');
  t.is((await uploadStatus(location)).headers.get('range'), `0-${blob.size - 1}`);
  t.is((await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' })).status, 201);
  await assertBlobContent(t, repo, blob);
});

test('of two concurrent PATCHes of the same range, one is accepted and the other is 416', async (t) => {
  const repo = uniqueRepo('upload');
  const blob = makeBlob(4 * MiB);
  const { location } = await startUpload(registry.url, repo);
  const responses = await Promise.all([patchChunk(location, blob.bytes, 0), patchChunk(location, blob.bytes, 0)]);
  t.deepEqual(responses.map((response) => response.status).sort(), [202, 416]);
  t.is((await uploadStatus(location)).headers.get('range'), `0-${blob.size - 1}`);
  t.is((await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' })).status, 201);
  await assertBlobContent(t, repo, blob);
});
