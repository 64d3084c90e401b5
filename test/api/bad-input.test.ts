import test, { type ExecutionContext } from 'ava';
import { MediaType } from '../../oci/media-types.js';
import {
  assertRegistryError,
  fetchUrl,
  rawRequest,
  readBytes,
  request,
  retryWhile,
  sendTruncatedRequest,
  type TruncatedRequest,
} from '../helpers/http-client.js';
import {
  imageManifest,
  makeBlob,
  patchChunk,
  pushBlob,
  pushImage,
  putManifest,
  startUpload,
  uniqueRepo,
  withDigest,
  type Blob,
} from '../helpers/oci-content.js';
import { sharedRegistry } from '../helpers/shared-registry.js';

const registry = sharedRegistry();

// --- endpoints and methods -------------------------------------------------------------------------------

test('a path no endpoint knows is UNSUPPORTED (404)', async (t) => {
  for (const path of ['/v2/foo/nothing', '/v3/', '/v2/foo/blobs', '/v2/foo/manifests', '/']) {
    const response = await request(registry.url, path);
    t.is(response.status, 404, path);
    await assertRegistryError(t, response, 404, 'UNSUPPORTED');
  }
});

test('a known path with a method it does not support is UNSUPPORTED (405) with an Allow header', async (t) => {
  const repo = uniqueRepo('bad');
  const digest = makeBlob(1).digest;
  const cases: Array<[string, string, string]> = [
    ['POST', `/v2/${repo}/manifests/latest`, 'PUT'],
    ['PUT', `/v2/${repo}/blobs/${digest}`, 'GET'],
    ['PATCH', `/v2/${repo}/tags/list`, 'GET'],
    ['POST', '/v2/_catalog', 'GET'],
    ['DELETE', '/v2/', 'GET'],
    ['POST', `/v2/${repo}/referrers/${digest}`, 'GET'],
  ];
  for (const [method, path, allowed] of cases) {
    const response = await request(registry.url, path, { method });
    t.regex(response.headers.get('allow') ?? '', new RegExp(`\\b${allowed}\\b`), `${method} ${path}`);
    await assertRegistryError(t, response, 405, 'UNSUPPORTED');
  }
});

test('GET /v2 without the trailing slash also answers 200 {}', async (t) => {
  const response = await request(registry.url, '/v2');
  t.is(response.status, 200);
  t.is(response.headers.get('docker-distribution-api-version'), 'registry/2.0');
  t.deepEqual(await response.json(), {});
});

// --- repository names ------------------------------------------------------------------------------------

const INVALID_NAMES_FETCHABLE = ['A/b', 'a/B', '-a', 'a-', 'a_', '_a', 'a___b', 'a..b', 'a/-b', 'a.', 'a$b', 'a'.repeat(256)];

test('invalid repository names are NAME_INVALID on every endpoint', async (t) => {
  const digest = makeBlob(1).digest;
  for (const name of INVALID_NAMES_FETCHABLE) {
    const requests: Array<[string, string]> = [
      ['GET', `/v2/${name}/tags/list`],
      ['GET', `/v2/${name}/manifests/latest`],
      ['PUT', `/v2/${name}/manifests/latest`],
      ['DELETE', `/v2/${name}/manifests/latest`],
      ['GET', `/v2/${name}/blobs/${digest}`],
      ['DELETE', `/v2/${name}/blobs/${digest}`],
      ['POST', `/v2/${name}/blobs/uploads/`],
      ['GET', `/v2/${name}/blobs/uploads/some-id`],
      ['GET', `/v2/${name}/referrers/${digest}`],
    ];
    for (const [method, path] of requests) {
      const response = await request(registry.url, path, { method, body: method === 'PUT' ? '{}' : undefined });
      t.is(response.status, 400, `${method} ${path}`);
      await assertRegistryError(t, response, 400, 'NAME_INVALID');
    }
  }
});

for (const [name, path] of [
  ['a//b', '/v2/a//b/tags/list'],
  ['a/', '/v2/a//tags/list'],
  ['../x', '/v2/../x/tags/list'],
  ['a/../b', '/v2/a/../b/manifests/latest'],
  ['./a', '/v2/./a/blobs/uploads/'],
] as const) {
  test(`the repository name ${JSON.stringify(name)}, sent verbatim, is NAME_INVALID`, async (t) => {
    const method = path.endsWith('/uploads/') ? 'POST' : 'GET';
    const response = await rawRequest(registry.url, { method, path });
    await assertRegistryError(t, response, 400, 'NAME_INVALID');
  });
}

test('a name using every separator the grammar allows is valid', async (t) => {
  const name = `${uniqueRepo('bad')}/a.b_c__d-e--f/g0`;
  // Valid but unknown: NAME_UNKNOWN, not NAME_INVALID.
  await assertRegistryError(t, await request(registry.url, `/v2/${name}/tags/list`), 404, 'NAME_UNKNOWN');
  await pushImage(registry.url, name, { tag: 'v1' });
  t.is((await request(registry.url, `/v2/${name}/manifests/v1`)).status, 200);
});

test('a name of exactly 255 characters is valid', async (t) => {
  const name = `${uniqueRepo('bad')}/${'a'.repeat(300)}`.slice(0, 255);
  t.is(name.length, 255);
  await pushImage(registry.url, name, { tag: 'v1' });
  t.is((await request(registry.url, `/v2/${name}/manifests/v1`)).status, 200);
});

// --- digests ---------------------------------------------------------------------------------------------

const INVALID_DIGESTS = [
  'sha256:zz',
  `sha256:${'a'.repeat(63)}`,
  `sha256:${'a'.repeat(65)}`,
  `md5:${'a'.repeat(32)}`,
  `sha256:${'A'.repeat(64)}`,
  `SHA256:${'a'.repeat(64)}`,
  `sha512:${'a'.repeat(64)}`,
  'sha256:',
];

test('malformed or unsupported digests are DIGEST_INVALID on blob GET, HEAD and DELETE', async (t) => {
  const repo = uniqueRepo('bad');
  await pushBlob(registry.url, repo, makeBlob(10));
  for (const digest of INVALID_DIGESTS) {
    await assertRegistryError(t, await request(registry.url, `/v2/${repo}/blobs/${digest}`), 400, 'DIGEST_INVALID');
    t.is((await request(registry.url, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status, 400, `HEAD ${digest}`);
    await assertRegistryError(t, await request(registry.url, `/v2/${repo}/blobs/${digest}`, { method: 'DELETE' }), 400, 'DIGEST_INVALID');
  }
});

test('malformed or unsupported digests are DIGEST_INVALID as a manifest reference', async (t) => {
  const repo = uniqueRepo('bad');
  const image = await pushImage(registry.url, repo, { tag: 'v1' });
  for (const digest of INVALID_DIGESTS) {
    await assertRegistryError(t, await request(registry.url, `/v2/${repo}/manifests/${digest}`), 400, 'DIGEST_INVALID');
    await assertRegistryError(t, await putManifest(registry.url, repo, digest, image), 400, 'DIGEST_INVALID');
    await assertRegistryError(
      t,
      await request(registry.url, `/v2/${repo}/manifests/${digest}`, { method: 'DELETE' }),
      400,
      'DIGEST_INVALID',
    );
  }
});

test('malformed or unsupported digests are DIGEST_INVALID when finishing an upload, and the upload survives', async (t) => {
  const repo = uniqueRepo('bad');
  const blob = makeBlob(100);
  for (const digest of INVALID_DIGESTS) {
    const monolithic = await request(registry.url, `/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob.bytes });
    await assertRegistryError(t, monolithic, 400, 'DIGEST_INVALID');
  }
  const { location } = await startUpload(registry.url, repo);
  t.is((await patchChunk(location, blob.bytes, 0)).status, 202);
  for (const digest of INVALID_DIGESTS) {
    await assertRegistryError(t, await fetchUrl(withDigest(location, digest), { method: 'PUT' }), 400, 'DIGEST_INVALID');
  }
  t.is((await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' })).status, 201);
});

// --- tags ------------------------------------------------------------------------------------------------

test('invalid tags are TAG_INVALID on PUT and DELETE, and name no manifest on GET', async (t) => {
  const repo = uniqueRepo('bad');
  const image = await pushImage(registry.url, repo, { tag: 'v1' });
  for (const tag of ['a'.repeat(129), '.hidden', '-dash', 'a+b', 'a%21b']) {
    await assertRegistryError(t, await putManifest(registry.url, repo, tag, image), 400, 'TAG_INVALID');
    await assertRegistryError(t, await request(registry.url, `/v2/${repo}/manifests/${tag}`), 404, 'MANIFEST_UNKNOWN');
    await assertRegistryError(t, await request(registry.url, `/v2/${repo}/manifests/${tag}`, { method: 'DELETE' }), 400, 'TAG_INVALID');
  }
  t.deepEqual(((await (await request(registry.url, `/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags, ['v1']);
});

test('tags of 128 characters and tags starting with an underscore or digit are valid', async (t) => {
  const repo = uniqueRepo('bad');
  const image = await pushImage(registry.url, repo);
  for (const tag of ['a'.repeat(128), '_private', '0.1.0', 'V1_x-y.z']) {
    t.is((await putManifest(registry.url, repo, tag, image)).status, 201, tag);
    t.is((await request(registry.url, `/v2/${repo}/manifests/${tag}`)).status, 200, tag);
  }
});

// --- malformed requests ----------------------------------------------------------------------------------

test('a non-numeric Content-Length is refused with 400 and the upload is unchanged', async (t) => {
  const repo = uniqueRepo('bad');
  const { location } = await startUpload(registry.url, repo);
  const response = await rawRequest(registry.url, {
    method: 'PATCH',
    path: location.pathname,
    headers: ['Content-Length: abc'],
    body: 'abc',
  });
  t.is(response.status, 400);
  t.is((await fetchUrl(location)).headers.get('range'), '0-0');
});

test('a header line without a colon is refused with 400', async (t) => {
  const response = await rawRequest(registry.url, { method: 'GET', path: '/v2/', headers: ['this is not a header'] });
  t.is(response.status, 400);
});

test('a request with both Content-Length and Transfer-Encoding is refused with 400', async (t) => {
  const repo = uniqueRepo('bad');
  const { location } = await startUpload(registry.url, repo);
  const response = await rawRequest(registry.url, {
    method: 'PATCH',
    path: location.pathname,
    headers: ['Content-Length: 5', 'Transfer-Encoding: chunked'],
    body: '5\r\nhello\r\n0\r\n\r\n',
  });
  t.is(response.status, 400);
  t.is((await fetchUrl(location)).headers.get('range'), '0-0');
});

test('a PATCH whose body is longer than its Content-Range is refused and the upload is unchanged', async (t) => {
  const repo = uniqueRepo('bad');
  const { location } = await startUpload(registry.url, repo);
  const response = await rawRequest(registry.url, {
    method: 'PATCH',
    path: location.pathname,
    headers: ['Content-Range: 0-4', 'Content-Length: 10'],
    body: '0123456789',
  });
  await assertRegistryError(t, response, 416, 'RANGE_INVALID');
  t.is((await fetchUrl(location)).headers.get('range'), '0-0');
});

test('a blob Range header with another unit or no numbers is 416', async (t) => {
  const repo = uniqueRepo('bad');
  const blob = await pushBlob(registry.url, repo, makeBlob(100));
  for (const range of ['items=0-5', 'bytes=abc', 'bytes=-', 'bytes=-0']) {
    const response = await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`, { headers: { Range: range } });
    t.is(response.headers.get('content-range'), 'bytes */100', range);
    await assertRegistryError(t, response, 416, 'RANGE_INVALID');
  }
});

// --- truncated bodies ------------------------------------------------------------------------------------

/** Continues an upload at `offset` with the rest of `blob` (retrying while an aborted request still holds it) and completes it. */
async function finishUpload(t: ExecutionContext, location: URL, blob: Blob, offset: number, repo: string): Promise<void> {
  const patch = await retryWhile(416, () => patchChunk(location, blob.bytes.subarray(offset), offset));
  t.is(patch.status, 202, `continue at ${offset}: ${patch.headers.get('range')}`);
  t.is(patch.headers.get('range'), `0-${blob.size - 1}`);
  const put = await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' });
  t.is(put.status, 201);
  const response = await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`);
  t.true((await readBytes(response)).equals(blob.bytes), 'blob bytes differ after a truncated request');
}

async function assertUploadAt(t: ExecutionContext, location: URL, offset: number): Promise<void> {
  const status = await fetchUrl(location);
  t.is(status.status, 204);
  t.is(status.headers.get('range'), `0-${Math.max(offset - 1, 0)}`);
}

async function assertNoBlob(t: ExecutionContext, repo: string, blob: Blob): Promise<void> {
  t.is((await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);
}

/**
 * An upload that received 100 of 1100 bytes, then a request (built from the upload's location) whose body
 * is cut off after 10 more: the upload must stay at 100 with no blob, and then finish normally.
 */
async function cutOffAfterFirstChunk(t: ExecutionContext, cutRequest: (location: URL, blob: Blob) => TruncatedRequest): Promise<void> {
  const repo = uniqueRepo('bad');
  const blob = makeBlob(1100);
  const { location } = await startUpload(registry.url, repo);
  t.is((await patchChunk(location, blob.bytes.subarray(0, 100), 0)).status, 202);
  await sendTruncatedRequest(registry.url, cutRequest(location, blob));
  await assertUploadAt(t, location, 100);
  await assertNoBlob(t, repo, blob);
  await finishUpload(t, location, blob, 100, repo);
}

test('a streamed PATCH cut off mid-body leaves the upload offset unchanged and no blob, and the upload continues', (t) =>
  cutOffAfterFirstChunk(t, (location, blob) => ({
    method: 'PATCH',
    path: location.pathname,
    declaredLength: 1000,
    sent: blob.bytes.subarray(100, 110),
  })));

test('a chunked PATCH cut off mid-body leaves the upload offset unchanged, and the upload continues', (t) =>
  cutOffAfterFirstChunk(t, (location, blob) => ({
    method: 'PATCH',
    path: location.pathname,
    headers: ['Content-Range: 100-1099'],
    declaredLength: 1000,
    sent: blob.bytes.subarray(100, 110),
  })));

test('a PUT whose last chunk is cut off leaves the upload offset unchanged and no blob', (t) =>
  cutOffAfterFirstChunk(t, (location, blob) => {
    const put = withDigest(location, blob.digest);
    return { method: 'PUT', path: `${put.pathname}${put.search}`, declaredLength: 1000, sent: blob.bytes.subarray(100, 110) };
  }));

test('a PATCH cut off after more than a megabyte leaves no stray bytes behind', async (t) => {
  const repo = uniqueRepo('bad');
  const blob = makeBlob(4 * 1024 * 1024);
  const { location } = await startUpload(registry.url, repo);
  t.is((await patchChunk(location, blob.bytes.subarray(0, 1000), 0)).status, 202);
  // Garbage, not the blob's bytes: if any of it survived, the final digest would not match.
  await sendTruncatedRequest(registry.url, {
    method: 'PATCH',
    path: location.pathname,
    declaredLength: 3 * 1024 * 1024,
    sent: Buffer.alloc(2 * 1024 * 1024 + 5, 0xee),
    pauseMs: 500,
  });
  await assertUploadAt(t, location, 1000);
  await finishUpload(t, location, blob, 1000, repo);
});

test('a monolithic POST whose body is cut off stores no blob', async (t) => {
  const repo = uniqueRepo('bad');
  const blob = makeBlob(1000);
  await sendTruncatedRequest(registry.url, {
    method: 'POST',
    path: `/v2/${repo}/blobs/uploads/?digest=${blob.digest}`,
    declaredLength: 1000,
    sent: blob.bytes.subarray(0, 10),
  });
  await assertNoBlob(t, repo, blob);
  // And the same blob pushed properly afterwards is intact.
  await pushBlob(registry.url, repo, blob);
  t.true((await readBytes(await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`))).equals(blob.bytes));
});

test('a manifest PUT whose body is cut off stores nothing', async (t) => {
  const repo = uniqueRepo('bad');
  const image = await pushImage(registry.url, repo, { tag: 'v1' });
  const next = imageManifest({ config: image.config, annotations: { more: 'x'.repeat(2000) } });
  await sendTruncatedRequest(registry.url, {
    method: 'PUT',
    path: `/v2/${repo}/manifests/v2`,
    headers: [`Content-Type: ${MediaType.ociManifest}`],
    declaredLength: next.size,
    sent: next.bytes.subarray(0, 10),
  });
  await assertRegistryError(t, await request(registry.url, `/v2/${repo}/manifests/v2`), 404, 'MANIFEST_UNKNOWN');
  await assertRegistryError(t, await request(registry.url, `/v2/${repo}/manifests/${next.digest}`), 404, 'MANIFEST_UNKNOWN');
  t.deepEqual(((await (await request(registry.url, `/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags, ['v1']);
});

// --- manifests other clients could not parse ----------------------------------------------------------------

function putRawManifest(repo: string, bytes: Buffer): Promise<Response> {
  return putManifest(registry.url, repo, 'v1', { bytes, digest: '', mediaType: MediaType.ociManifest, size: bytes.length });
}

/** A valid OCI manifest body with `value` spliced in as the field "x". */
function manifestWith(config: Blob, value: Buffer): Buffer {
  const text = imageManifest({ config, extra: { x: '@@X@@' } }).bytes.toString('utf8');
  const [before, after] = text.split('"@@X@@"') as [string, string];
  return Buffer.concat([Buffer.from(before), value, Buffer.from(after)]);
}

test('a manifest that is not valid UTF-8 is MANIFEST_INVALID', async (t) => {
  const repo = uniqueRepo('bad');
  const config = await pushBlob(registry.url, repo, makeBlob(30));
  const invalid = {
    'a stray continuation byte': [0x22, 0x80, 0x22],
    'an 0xff byte': [0x22, 0x61, 0xff, 0x22],
    'an overlong encoding of /': [0x22, 0xc0, 0xaf, 0x22],
    'an encoded surrogate': [0x22, 0xed, 0xa0, 0x80, 0x22],
    'a truncated sequence': [0x22, 0xe2, 0x82, 0x22],
  };
  for (const [what, bytes] of Object.entries(invalid)) {
    const entry = await assertRegistryError(
      t,
      await putRawManifest(repo, manifestWith(config, Buffer.from(bytes))),
      400,
      'MANIFEST_INVALID',
    );
    t.regex(entry.message ?? '', /UTF-8/, what);
  }
  const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), imageManifest({ config }).bytes]);
  await assertRegistryError(t, await putRawManifest(repo, withBom), 400, 'MANIFEST_INVALID');
  await assertRegistryError(t, await request(registry.url, `/v2/${repo}/manifests/v1`), 404, 'NAME_UNKNOWN');
  t.is((await putRawManifest(repo, manifestWith(config, Buffer.from('"naïve ☃ 𝄞"')))).status, 201, 'valid multi-byte UTF-8 is accepted');
});

function nested(depth: number, open: string, close: string): Buffer {
  return Buffer.from(`${open.repeat(depth)}${close.repeat(depth)}`);
}

test('a manifest nested 100,000 levels deep is MANIFEST_INVALID, answered at once', async (t) => {
  const repo = uniqueRepo('bad');
  const config = await pushBlob(registry.url, repo, makeBlob(30));
  for (const [open, close] of [
    ['[', ']'],
    ['{"a":', '}'],
  ] as const) {
    const started = Date.now();
    const entry = await assertRegistryError(
      t,
      await putRawManifest(repo, manifestWith(config, nested(100_000, open, close))),
      400,
      'MANIFEST_INVALID',
    );
    t.true(Date.now() - started < 2_000, `answered after ${Date.now() - started} ms`);
    t.regex(entry.message ?? '', /nests deeper than 64 levels/);
  }
  await assertRegistryError(t, await putRawManifest(repo, nested(100_000, '[', ']')), 400, 'MANIFEST_INVALID');
});

test('a manifest nested 64 levels deep is accepted and one nested 65 levels is MANIFEST_INVALID', async (t) => {
  const repo = uniqueRepo('bad');
  const config = await pushBlob(registry.url, repo, makeBlob(30));
  // The manifest object itself is the first level.
  await assertRegistryError(t, await putRawManifest(repo, manifestWith(config, nested(64, '[', ']'))), 400, 'MANIFEST_INVALID');
  const brackets = Buffer.from(JSON.stringify('[[[{{ "quoted" \\ brackets do not count'));
  t.is(
    (await putRawManifest(repo, manifestWith(config, Buffer.concat([Buffer.from('['.repeat(63)), brackets, Buffer.from(']'.repeat(63))]))))
      .status,
    201,
  );
});
