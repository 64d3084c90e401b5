import test from 'ava';
import { assertRegistryError, readBytes, request } from '../helpers/http-client.js';
import { makeBlob, pushBlob, uniqueRepo, unknownDigest } from '../helpers/oci-content.js';
import { sharedRegistry } from '../helpers/shared-registry.js';

const registry = sharedRegistry();

/** A blob of `size` random bytes pushed to a fresh repository. */
async function pushedBlob(size = 1000) {
  const repo = uniqueRepo('blob');
  const blob = await pushBlob(registry.url, repo, makeBlob(size));
  return { repo, blob, path: `/v2/${repo}/blobs/${blob.digest}` };
}

test('GET of a pushed blob returns its bytes with length, digest, ETag and Accept-Ranges headers', async (t) => {
  const { blob, path } = await pushedBlob(1000);
  const response = await request(registry.url, path);
  t.is(response.status, 200);
  t.is(response.headers.get('content-length'), '1000');
  t.is(response.headers.get('docker-content-digest'), blob.digest);
  t.is(response.headers.get('etag'), `"${blob.digest}"`);
  t.is(response.headers.get('accept-ranges'), 'bytes');
  t.is(response.headers.get('docker-distribution-api-version'), 'registry/2.0');
  t.true((await readBytes(response)).equals(blob.bytes));
});

test('HEAD of a pushed blob returns the same headers as GET and no body', async (t) => {
  const { blob, path } = await pushedBlob(777);
  const response = await request(registry.url, path, { method: 'HEAD' });
  t.is(response.status, 200);
  t.is(response.headers.get('content-length'), '777');
  t.is(response.headers.get('docker-content-digest'), blob.digest);
  t.is(response.headers.get('etag'), `"${blob.digest}"`);
  t.is(response.headers.get('accept-ranges'), 'bytes');
  t.is((await readBytes(response)).length, 0);
});

test('an empty blob can be pushed and read back', async (t) => {
  const repo = uniqueRepo('blob');
  const blob = await pushBlob(registry.url, repo, makeBlob(0));
  const response = await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`);
  t.is(response.status, 200);
  t.is(response.headers.get('content-length'), '0');
  t.is((await readBytes(response)).length, 0);
});

test('a closed byte range is answered 206 with Content-Range and exactly those bytes', async (t) => {
  const { blob, path } = await pushedBlob(1000);
  const response = await request(registry.url, path, { headers: { Range: 'bytes=100-199' } });
  t.is(response.status, 206);
  t.is(response.headers.get('content-range'), 'bytes 100-199/1000');
  t.is(response.headers.get('content-length'), '100');
  t.true((await readBytes(response)).equals(blob.bytes.subarray(100, 200)));
});

test('an open-ended byte range returns the rest of the blob', async (t) => {
  const { blob, path } = await pushedBlob(1000);
  const response = await request(registry.url, path, { headers: { Range: 'bytes=990-' } });
  t.is(response.status, 206);
  t.is(response.headers.get('content-range'), 'bytes 990-999/1000');
  t.true((await readBytes(response)).equals(blob.bytes.subarray(990)));
});

test('a suffix byte range returns the last bytes of the blob', async (t) => {
  const { blob, path } = await pushedBlob(1000);
  const response = await request(registry.url, path, { headers: { Range: 'bytes=-10' } });
  t.is(response.status, 206);
  t.is(response.headers.get('content-range'), 'bytes 990-999/1000');
  t.true((await readBytes(response)).equals(blob.bytes.subarray(990)));
});

test('a byte range reaching past the end is cut to the blob size', async (t) => {
  const { blob, path } = await pushedBlob(1000);
  const response = await request(registry.url, path, { headers: { Range: 'bytes=900-5000' } });
  t.is(response.status, 206);
  t.is(response.headers.get('content-range'), 'bytes 900-999/1000');
  t.true((await readBytes(response)).equals(blob.bytes.subarray(900)));
});

test('HEAD with a byte range reports the range length and Content-Range without a body', async (t) => {
  const { path } = await pushedBlob(1000);
  const response = await request(registry.url, path, { method: 'HEAD', headers: { Range: 'bytes=0-9' } });
  t.is(response.status, 206);
  t.is(response.headers.get('content-range'), 'bytes 0-9/1000');
  t.is(response.headers.get('content-length'), '10');
});

test('a byte range starting at or past the end is answered 416 with Content-Range bytes */size', async (t) => {
  const { path } = await pushedBlob(1000);
  for (const range of ['bytes=1000-', 'bytes=1000-1001', 'bytes=5000-6000']) {
    const response = await request(registry.url, path, { headers: { Range: range } });
    t.is(response.headers.get('content-range'), 'bytes */1000', range);
    await assertRegistryError(t, response, 416, 'RANGE_INVALID');
  }
});

test('a byte range whose end precedes its start is answered 416', async (t) => {
  const { path } = await pushedBlob(1000);
  const response = await request(registry.url, path, { headers: { Range: 'bytes=500-100' } });
  t.is(response.headers.get('content-range'), 'bytes */1000');
  await assertRegistryError(t, response, 416, 'RANGE_INVALID');
});

test('If-None-Match with the blob ETag is answered 304 without a body', async (t) => {
  const { blob, path } = await pushedBlob(100);
  const response = await request(registry.url, path, { headers: { 'If-None-Match': `"${blob.digest}"` } });
  t.is(response.status, 304);
  t.is(response.headers.get('etag'), `"${blob.digest}"`);
  t.is((await readBytes(response)).length, 0);
});

test('If-None-Match listing the blob ETag among others is answered 304', async (t) => {
  const { blob, path } = await pushedBlob(100);
  const response = await request(registry.url, path, { headers: { 'If-None-Match': `"${unknownDigest()}", "${blob.digest}"` } });
  t.is(response.status, 304);
});

test('If-None-Match with another ETag returns the blob', async (t) => {
  const { blob, path } = await pushedBlob(100);
  const response = await request(registry.url, path, { headers: { 'If-None-Match': `"${unknownDigest()}"` } });
  t.is(response.status, 200);
  t.true((await readBytes(response)).equals(blob.bytes));
});

test('a blob never pushed is BLOB_UNKNOWN (404) on GET and 404 on HEAD', async (t) => {
  const repo = uniqueRepo('blob');
  await pushBlob(registry.url, repo, makeBlob(10));
  const digest = unknownDigest();
  const get = await request(registry.url, `/v2/${repo}/blobs/${digest}`);
  const entry = await assertRegistryError(t, get, 404, 'BLOB_UNKNOWN');
  t.deepEqual(entry.detail, { digest });
  const head = await request(registry.url, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  t.is(head.status, 404);
});

test('a blob pushed to one repository is BLOB_UNKNOWN in another', async (t) => {
  const { blob } = await pushedBlob(100);
  const other = uniqueRepo('blob');
  await pushBlob(registry.url, other, makeBlob(10));
  await assertRegistryError(t, await request(registry.url, `/v2/${other}/blobs/${blob.digest}`), 404, 'BLOB_UNKNOWN');
  t.is((await request(registry.url, `/v2/${other}/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);
});

test('DELETE of a blob answers 202, after which GET and HEAD are 404 and a second DELETE is 404', async (t) => {
  const { blob, path } = await pushedBlob(100);
  const deleted = await request(registry.url, path, { method: 'DELETE' });
  t.is(deleted.status, 202);
  await deleted.arrayBuffer();
  await assertRegistryError(t, await request(registry.url, path), 404, 'BLOB_UNKNOWN');
  t.is((await request(registry.url, path, { method: 'HEAD' })).status, 404);
  const again = await request(registry.url, path, { method: 'DELETE' });
  const entry = await assertRegistryError(t, again, 404, 'BLOB_UNKNOWN');
  t.deepEqual(entry.detail, { digest: blob.digest });
});

test('deleting a blob from one repository leaves it readable in another that holds it', async (t) => {
  const blob = makeBlob(300);
  const first = uniqueRepo('blob');
  const second = uniqueRepo('blob');
  await pushBlob(registry.url, first, blob);
  await pushBlob(registry.url, second, blob);
  t.is((await request(registry.url, `/v2/${first}/blobs/${blob.digest}`, { method: 'DELETE' })).status, 202);
  const response = await request(registry.url, `/v2/${second}/blobs/${blob.digest}`);
  t.is(response.status, 200);
  t.true((await readBytes(response)).equals(blob.bytes));
});

test('a sha512 blob is served under its sha512 digest', async (t) => {
  const repo = uniqueRepo('blob');
  const blob = await pushBlob(registry.url, repo, makeBlob(4096, 'sha512'));
  const response = await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`);
  t.is(response.status, 200);
  t.is(response.headers.get('docker-content-digest'), blob.digest);
  t.is(response.headers.get('content-length'), '4096');
  t.true((await readBytes(response)).equals(blob.bytes));
});

test('a large blob is streamed back byte-identical', async (t) => {
  const { blob, path } = await pushedBlob(5 * 1024 * 1024 + 3);
  const response = await request(registry.url, path);
  t.is(response.status, 200);
  t.true((await readBytes(response)).equals(blob.bytes));
});
