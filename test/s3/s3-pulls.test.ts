import test from 'ava';
import { readBytes, request } from '../helpers/http-client.js';
import { makeBlob, pushBlob, uniqueRepo } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { S3Server } from '../helpers/s3-server.js';

let s3: S3Server | undefined;
let registry: RegistryProcess | undefined;

test.before(async () => {
  s3 = await S3Server.start();
  registry = await RegistryProcess.start({
    env: { ...s3.registryEnv({ redirect: true }), BERTH_STORAGE__S3__REDIRECT__EXPIRY_SECONDS: '90' },
  });
});

test.after.always(async () => {
  await registry?.destroy();
  await s3?.stop();
});

test('a blob GET answers 307 to a presigned S3 URL with the configured expiry, not cacheable beyond it', async (t) => {
  const repo = uniqueRepo('pulls');
  const blob = await pushBlob(registry!.url, repo, makeBlob(2048));
  const response = await request(registry!.url, `/v2/${repo}/blobs/${blob.digest}`, { redirect: 'manual' });
  t.is(response.status, 307);
  t.is(response.headers.get('cache-control'), 'no-store');
  t.is(response.headers.get('docker-content-digest'), blob.digest);
  const location = new URL(response.headers.get('location') ?? '');
  t.is(location.origin, s3!.endpoint);
  t.true(location.pathname.endsWith(`/blobs/sha256/${blob.digest.slice(7, 9)}/${blob.digest.slice(7)}`), location.pathname);
  t.is(location.searchParams.get('X-Amz-Expires'), '90');

  const ranged = await fetch(location, { headers: { Range: 'bytes=1000-1099' } });
  t.is(ranged.status, 206);
  t.true((await readBytes(ranged)).equals(blob.bytes.subarray(1000, 1100)), 'the presigned URL serves the range');
});

test('HEAD of a blob answers from metadata without a redirect', async (t) => {
  const repo = uniqueRepo('pulls');
  const blob = await pushBlob(registry!.url, repo, makeBlob(2048));
  const head = await request(registry!.url, `/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD', redirect: 'manual' });
  t.is(head.status, 200);
  t.is(head.headers.get('location'), null);
  t.is(head.headers.get('content-length'), '2048');
});

test('a blob GET in a repository that cannot see the blob answers 404, not a redirect', async (t) => {
  const blob = await pushBlob(registry!.url, uniqueRepo('pulls'), makeBlob(64));
  const response = await request(registry!.url, `/v2/${uniqueRepo('pulls')}/blobs/${blob.digest}`, { redirect: 'manual' });
  t.is(response.status, 404);
});
