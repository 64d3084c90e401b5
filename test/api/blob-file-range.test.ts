import test from 'ava';
import { readBytes, request } from '../helpers/http-client.js';
import { makeBlob, pushBlob, uniqueRepo } from '../helpers/oci-content.js';
import { scrapeMetrics, total } from '../helpers/prometheus.js';
import { sharedRegistry } from '../helpers/shared-registry.js';

// A started `berth serve` on filesystem storage, with every store behind the timing wrapper as in production:
// the storage metric names the store operation each GET used. Serial, so that the counts are this test's own.
const registry = sharedRegistry();

const STORAGE_OPERATIONS = 'berth_storage_operation_duration_seconds_count';
// Larger than the 1 MiB buffers the file-range path sends through, so several turns of both are used.
const BLOB_SIZE = 3 * (1 << 20) + 17;

async function storeOperations(action: string): Promise<number> {
  return total(await scrapeMetrics(registry.url), STORAGE_OPERATIONS, { store: 'filesystem', action });
}

async function pushedBlob() {
  const repo = uniqueRepo('file-range');
  const blob = await pushBlob(registry.url, repo, makeBlob(BLOB_SIZE));
  return { blob, path: `/v2/${repo}/blobs/${blob.digest}` };
}

test.serial('a blob GET from filesystem storage is served from a file range, never through the stream path', async (t) => {
  const { blob, path } = await pushedBlob();
  const before = await storeOperations('open_blob_file');

  const response = await request(registry.url, path);
  t.is(response.status, 200);
  t.is(response.headers.get('content-length'), String(BLOB_SIZE));
  t.is(response.headers.get('docker-content-digest'), blob.digest);
  t.true((await readBytes(response)).equals(blob.bytes), 'the bytes are the blob');

  t.is((await storeOperations('open_blob_file')) - before, 1, 'the GET opened the blob as a file range');
  t.is(await storeOperations('open_blob'), 0, 'no GET of this registry took the stream path');
});

test.serial('a Range GET across buffer boundaries is answered 206 with exactly those bytes, from a file range', async (t) => {
  const { blob, path } = await pushedBlob();
  const [start, end] = [(1 << 20) - 5, 2 * (1 << 20) + 5];
  const before = await storeOperations('open_blob_file');

  const response = await request(registry.url, path, { headers: { Range: `bytes=${start}-${end}` } });
  t.is(response.status, 206);
  t.is(response.headers.get('content-range'), `bytes ${start}-${end}/${BLOB_SIZE}`);
  t.is(response.headers.get('content-length'), String(end - start + 1));
  t.true((await readBytes(response)).equals(blob.bytes.subarray(start, end + 1)), 'the bytes are the range');

  t.is((await storeOperations('open_blob_file')) - before, 1);
  t.is(await storeOperations('open_blob'), 0);
});

test.serial('HEAD, with and without a Range, answers the GET headers without opening the blob', async (t) => {
  const { blob, path } = await pushedBlob();
  const before = await storeOperations('open_blob_file');

  const whole = await request(registry.url, path, { method: 'HEAD' });
  t.is(whole.status, 200);
  t.is(whole.headers.get('content-length'), String(BLOB_SIZE));
  t.is(whole.headers.get('docker-content-digest'), blob.digest);
  t.is((await readBytes(whole)).length, 0);
  const ranged = await request(registry.url, path, { method: 'HEAD', headers: { Range: 'bytes=10-19' } });
  t.is(ranged.status, 206);
  t.is(ranged.headers.get('content-range'), `bytes 10-19/${BLOB_SIZE}`);
  t.is(ranged.headers.get('content-length'), '10');
  t.is((await readBytes(ranged)).length, 0);

  t.is((await storeOperations('open_blob_file')) - before, 0, 'HEAD is answered from metadata');
  t.is(await storeOperations('open_blob'), 0);
});
