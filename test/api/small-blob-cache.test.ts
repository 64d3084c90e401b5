import test, { type ExecutionContext } from 'ava';
import { readBytes, request } from '../helpers/http-client.js';
import { blobOf, makeBlob, pushBlob, uniqueRepo, type Blob } from '../helpers/oci-content.js';
import { scrapeMetrics, total } from '../helpers/prometheus.js';
import { RegistryProcess } from '../helpers/registry-process.js';

const STORE_READS = ['open_blob', 'open_blob_file'];
const registries: RegistryProcess[] = [];

test.after.always(async () => {
  await Promise.all(registries.map((registry) => registry.destroy()));
});

async function startRegistry(env: Record<string, string>): Promise<RegistryProcess> {
  const registry = await RegistryProcess.start({ env });
  registries.push(registry);
  return registry;
}

async function storeReads(registry: RegistryProcess): Promise<number> {
  const samples = await scrapeMetrics(registry.url);
  return STORE_READS.reduce(
    (sum, action) => sum + total(samples, 'berth_storage_operation_duration_seconds_count', { store: 'filesystem', action }),
    0,
  );
}

/** How many store reads a GET of the blob costs, after asserting it serves the blob's bytes. */
async function readsOfGet(t: ExecutionContext, registry: RegistryProcess, repo: string, blob: Blob): Promise<number> {
  const before = await storeReads(registry);
  const response = await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`);
  t.is(response.status, 200);
  t.true((await readBytes(response)).equals(blob.bytes), 'the blob bytes are served');
  return (await storeReads(registry)) - before;
}

test('with the small-blob cache on, a second GET of a small blob does not touch the store, a large one does', async (t) => {
  const registry = await startRegistry({ BERTH_CACHE__SMALL_BLOBS__MAX_BLOB_BYTES: '1024' });
  const repo = uniqueRepo('cache');
  const small = await pushBlob(registry.url, repo, blobOf('{"architecture":"amd64","os":"linux"}'));
  const large = await pushBlob(registry.url, repo, makeBlob(1025));
  t.is(await readsOfGet(t, registry, repo, small), 1, 'the first GET reads the store');
  t.is(await readsOfGet(t, registry, repo, small), 0, 'the second GET is served from memory');
  for (let pull = 0; pull < 2; pull++) t.is(await readsOfGet(t, registry, repo, large), 1, 'a blob over the bound is read each time');
  const range = await request(registry.url, `/v2/${repo}/blobs/${small.digest}`, { headers: { Range: 'bytes=1-4' } });
  t.is(range.status, 206);
  t.true((await readBytes(range)).equals(small.bytes.subarray(1, 5)), 'a range of a cached blob is its bytes');
});

test('with the small-blob cache off, every GET of a small blob reads the store', async (t) => {
  const registry = await startRegistry({ BERTH_CACHE__SMALL_BLOBS__ENABLED: 'false' });
  const repo = uniqueRepo('cache');
  const small = await pushBlob(registry.url, repo, blobOf('{"architecture":"amd64","os":"linux"}'));
  for (let pull = 0; pull < 3; pull++) t.is(await readsOfGet(t, registry, repo, small), 1);
});
