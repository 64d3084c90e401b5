import type { IncomingMessage } from 'node:http';
import test, { type ExecutionContext } from 'ava';
import { assertRegistryError, fetchUrl, readBytes, request } from '../helpers/http-client.js';
import { makeBlob, patchChunk, postBlob, startUpload, uniqueRepo, withDigest, type Blob } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { isPutObject, isUploadPartCopy, S3FaultProxy } from '../helpers/s3-fault-proxy.js';
import { S3Server, type RegistryS3Options } from '../helpers/s3-server.js';
import { blobKey } from '../helpers/storage-backends.js';

// Every test runs a registry whose S3 calls go through a fault-injecting proxy, and pulls through the
// registry (redirect off) so that the pulls meet the faults too.
const MiB = 1024 * 1024;
const KiB = 1024;
// Proxied bodies of 1 MiB and more read as 256 KiB ranged GETs, 3 in flight (the ranged-read tests).
const RANGED_READS = { minBytes: MiB, partSize: 256 * KiB, concurrency: 3 };

interface FaultyS3 {
  registry: RegistryProcess;
  proxy: S3FaultProxy;
  s3: S3Server;
  stop(): Promise<void>;
}

async function startFaultyS3(options: RegistryS3Options): Promise<FaultyS3> {
  const s3 = await S3Server.start();
  let proxy: S3FaultProxy | undefined;
  let registry: RegistryProcess | undefined;
  const stop = async () => {
    await registry?.destroy();
    await proxy?.stop();
    await s3.stop();
  };
  try {
    proxy = await S3FaultProxy.start(s3.port);
    registry = await RegistryProcess.start({ env: s3.registryEnv({ endpoint: proxy.endpoint, redirect: false, ...options }) });
    return { registry, proxy, s3, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function withFaultyS3(options: RegistryS3Options, run: (setup: FaultyS3) => Promise<void>): Promise<void> {
  const setup = await startFaultyS3(options);
  try {
    await run(setup);
  } finally {
    await setup.stop();
  }
}

// One registry for the ranged-read tests, which run one after the other on it (each sets the proxy's faults).
let ranged: FaultyS3 | undefined;

test.before(async () => {
  ranged = await startFaultyS3({ maxAttempts: 2, rangedReads: RANGED_READS });
});

test.after.always(async () => {
  await ranged?.stop();
});

/** Pushes `blob` as two PATCHes and a PUT; returns the upload URL and the PUT's response. */
async function pushInTwoChunks(registry: RegistryProcess, repo: string, blob: Blob): Promise<{ location: URL; put: Response }> {
  const { location } = await startUpload(registry.url, repo);
  const half = Math.floor(blob.size / 2);
  for (const [start, end] of [
    [0, half],
    [half, blob.size],
  ] as const) {
    const patch = await patchChunk(location, blob.bytes.subarray(start, end), start);
    if (patch.status !== 202) throw new Error(`PATCH ${start}-${end - 1}: ${patch.status} ${await patch.text()}`);
  }
  return { location, put: await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' }) };
}

async function assertPullsBack(t: ExecutionContext, registry: RegistryProcess, repo: string, blob: Blob): Promise<void> {
  const response = await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`);
  t.is(response.status, 200);
  t.true((await readBytes(response)).equals(blob.bytes), 'pulled bytes differ');
}

async function assertNothingLeftInS3(t: ExecutionContext, s3: S3Server): Promise<void> {
  t.deepEqual(await s3.keys('_uploads/'), [], 'upload segments left behind');
  t.deepEqual(await s3.openMultipartUploads(), [], 'multipart uploads left open');
}

for (const [fault, every] of [
  ['slowdown', 2],
  ['reset', 3],
] as const) {
  test(`a chunked push and a pull succeed byte-identical while S3 meets one request in ${every} with a ${fault}`, async (t) => {
    await withFaultyS3({}, async ({ registry, proxy, s3 }) => {
      const repo = uniqueRepo('faults');
      const blob = makeBlob(12 * MiB);
      proxy.inject({ fault, every });
      const { put } = await pushInTwoChunks(registry, repo, blob);
      t.is(put.status, 201, await put.text());
      await assertPullsBack(t, registry, repo, blob);
      t.true(proxy.injected >= 3, `only ${proxy.injected} faults were injected`);
      proxy.inject(undefined);
      await assertNothingLeftInS3(t, s3);
    });
  });
}

// Far past any push's time on a loaded CI machine (a quick push there took over 8 s), so only a registry that waited
// out a stall reaches it.
const STALL_MS = 60_000;

test('an S3 call that stalls longer than requestTimeoutMs is abandoned and retried, and the push succeeds', async (t) => {
  await withFaultyS3({ requestTimeoutMs: 1_000 }, async ({ registry, proxy }) => {
    const repo = uniqueRepo('faults');
    const blob = makeBlob(MiB);
    // Stalls far longer than the timeout: waiting out even one of them would take the push past STALL_MS.
    proxy.inject({ fault: 'stall', matches: isPutObject, limit: 2, stallMs: STALL_MS });
    const started = Date.now();
    const post = await postBlob(registry.url, repo, blob);
    t.is(post.status, 201, await post.text());
    t.is(proxy.injected, 2);
    t.true(Date.now() - started < STALL_MS, 'the registry waited for the stalled calls instead of retrying them');
    await assertPullsBack(t, registry, repo, blob);
  });
});

test('a chunk that S3 keeps refusing answers 503 UNAVAILABLE naming the S3 call, and the upload continues from the same offset once S3 is back', async (t) => {
  await withFaultyS3({ maxAttempts: 2 }, async ({ registry, proxy, s3 }) => {
    const repo = uniqueRepo('faults');
    const blob = makeBlob(MiB);
    const { location } = await startUpload(registry.url, repo);
    proxy.inject({ fault: 'reset', matches: isPutObject });
    const error = await assertRegistryError(t, await patchChunk(location, blob.bytes, 0), 503, 'UNAVAILABLE');
    t.deepEqual(error.detail, { operation: 'PutObject' });
    t.regex(registry.logs, /"s3Operation":"PutObject".*S3 PutObject failed after retries/);
    const status = await fetchUrl(location);
    t.is(status.status, 204);
    t.is(status.headers.get('range'), '0-0', 'no byte was acknowledged');

    proxy.inject(undefined);
    t.is((await patchChunk(location, blob.bytes, 0)).status, 202);
    t.is((await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' })).status, 201);
    await assertPullsBack(t, registry, repo, blob);
    await assertNothingLeftInS3(t, s3);
  });
});

test('a completion whose part copies keep failing answers 503, aborts its multipart upload and leaves no blob; the retried PUT succeeds', async (t) => {
  await withFaultyS3({ maxAttempts: 2 }, async ({ registry, proxy, s3 }) => {
    const repo = uniqueRepo('faults');
    const blob = makeBlob(12 * MiB);
    proxy.inject({ fault: 'reset', matches: isUploadPartCopy });
    const { location, put } = await pushInTwoChunks(registry, repo, blob);
    await assertRegistryError(t, put, 503, 'UNAVAILABLE');
    t.deepEqual(await s3.openMultipartUploads(), [], 'the failed multipart upload was not aborted');
    t.deepEqual(await s3.keys(blobKey(blob.digest)), [], 'a partial blob is in the bucket');
    t.is((await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);

    proxy.inject(undefined);
    t.is((await fetchUrl(withDigest(location, blob.digest), { method: 'PUT' })).status, 201);
    await assertPullsBack(t, registry, repo, blob);
    await assertNothingLeftInS3(t, s3);
  });
});

test('a pull while S3 is unreachable answers 503 UNAVAILABLE with a JSON body, and HEAD still answers from metadata', async (t) => {
  await withFaultyS3({ maxAttempts: 2 }, async ({ registry, proxy }) => {
    const repo = uniqueRepo('faults');
    const blob = makeBlob(4096);
    t.is((await postBlob(registry.url, repo, blob)).status, 201);
    proxy.inject({ fault: 'reset' });
    const head = await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' });
    t.is(head.status, 200);
    t.is(head.headers.get('content-length'), String(blob.size));
    t.is(proxy.injected, 0, 'HEAD called S3');
    const error = await assertRegistryError(t, await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`), 503, 'UNAVAILABLE');
    t.deepEqual(error.detail, { operation: 'GetObject' });
  });
});

/** The GETs the proxy saw since `from`, as [start, end] of their Range headers. */
function rangesSince(proxy: S3FaultProxy, from: number): Array<[number, number]> {
  return proxy.getRanges.slice(from).map((header) => {
    const match = /^bytes=(\d+)-(\d+)$/.exec(header);
    if (!match) throw new Error(`a GET without a closed range: '${header}'`);
    return [Number(match[1]), Number(match[2])];
  });
}

test.serial(
  'a large proxied blob is read as parallel ranged GETs and arrives byte-identical, also when S3 resets a part once; a Range request gets exactly its bytes',
  async (t) => {
    const { registry, proxy } = ranged!;
    const repo = uniqueRepo('faults');
    const blob = makeBlob(3 * MiB + 123);
    t.is((await postBlob(registry.url, repo, blob)).status, 201);

    const before = proxy.getRanges.length;
    await assertPullsBack(t, registry, repo, blob);
    const parts = rangesSince(proxy, before).sort(([a], [b]) => a - b);
    t.is(parts.length, Math.ceil(blob.size / RANGED_READS.partSize), 'one GET per part');
    parts.forEach(([start, end], index) => {
      t.is(start, index * RANGED_READS.partSize);
      t.is(end, Math.min(start + RANGED_READS.partSize, blob.size) - 1);
    });

    proxy.inject({ fault: 'reset', matches: (incoming) => incoming.method === 'GET', every: 5, limit: 1 });
    await assertPullsBack(t, registry, repo, blob);
    t.is(proxy.injected, 1);
    proxy.inject(undefined);

    for (const [start, end] of [
      [100_000, 100_000 + 1.5 * MiB],
      [0, 1000],
      [blob.size - MiB - 7, blob.size - 1],
    ] as const) {
      const response = await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`, { headers: { Range: `bytes=${start}-${end}` } });
      t.is(response.status, 206);
      t.is(response.headers.get('content-range'), `bytes ${start}-${end}/${blob.size}`);
      t.true((await readBytes(response)).equals(blob.bytes.subarray(start, end + 1)), `bytes ${start}-${end} differ`);
    }
  },
);

test.serial(
  'a proxied ranged read whose later part S3 keeps failing aborts the response after the bytes before it; a failing first part answers 503',
  async (t) => {
    const { registry, proxy } = ranged!;
    const repo = uniqueRepo('faults');
    const blob = makeBlob(3 * MiB);
    t.is((await postBlob(registry.url, repo, blob)).status, 201);
    const failing = 8 * RANGED_READS.partSize;
    const getFrom = (at: number) => (incoming: IncomingMessage) =>
      incoming.method === 'GET' && incoming.headers.range?.startsWith(`bytes=${at}-`) === true;
    try {
      proxy.inject({ fault: 'reset', matches: getFrom(failing) });
      const response = await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`);
      t.is(response.status, 200);
      const received: Buffer[] = [];
      const reading = (async () => {
        for await (const chunk of response.body as AsyncIterable<Uint8Array>) received.push(Buffer.from(chunk));
      })();
      await t.throwsAsync(reading, undefined, 'the body ended as if complete');
      const bytes = Buffer.concat(received);
      t.true(bytes.length <= failing, `${bytes.length} bytes arrived, past the failing part`);
      t.true(bytes.equals(blob.bytes.subarray(0, bytes.length)), 'the bytes before the failure differ');

      proxy.inject({ fault: 'reset', matches: getFrom(0) });
      const error = await assertRegistryError(t, await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`), 503, 'UNAVAILABLE');
      t.deepEqual(error.detail, { operation: 'GetObject' });
    } finally {
      proxy.inject(undefined);
    }
  },
);
