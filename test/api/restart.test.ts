import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { fetchUrl, readBytes, request, serverErrorLines } from '../helpers/http-client.js';
import { makeBlob, patchChunk, pushImage, startUpload, uniqueRepo, withDigest } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';

// Each test restarts its own registry over its own data directory; `first` owns (and finally removes) it.
async function withRestart(
  t: ExecutionContext,
  run: (first: RegistryProcess, restart: () => Promise<RegistryProcess>) => Promise<void>,
): Promise<void> {
  const first = await RegistryProcess.start();
  let second: RegistryProcess | undefined;
  try {
    await run(first, async () => {
      second = await RegistryProcess.start({ dataDir: first.dataDir });
      return second;
    });
    if (second) t.deepEqual(serverErrorLines(second.logs), [], 'the restarted registry logged an internal error');
  } finally {
    await second?.destroy();
    await first.destroy();
  }
}

const MiB = 1024 * 1024;

// Chunks of sizes that are multiples of nothing in particular; the first two go to the registry before it stops.
const FIRST = MiB + 7;
const SECOND = 333;
const THIRD = 2 * MiB;

for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
  test(`a chunked upload resumes after the registry is stopped with ${signal} and the blob is byte-identical`, async (t) => {
    await withRestart(t, async (first, restart) => {
      const repo = uniqueRepo('restart');
      const blob = makeBlob(FIRST + SECOND + THIRD);
      const { location } = await startUpload(first.url, repo);
      t.is((await patchChunk(location, blob.bytes.subarray(0, FIRST), 0)).status, 202);
      const second = await patchChunk(location, blob.bytes.subarray(FIRST, FIRST + SECOND), FIRST);
      t.is(second.status, 202);
      t.is(second.headers.get('range'), `0-${FIRST + SECOND - 1}`);

      await first.stop(signal);
      const restarted = await restart();
      const resumed = new URL(`${location.pathname}${location.search}`, restarted.url);

      const status = await fetchUrl(resumed);
      t.is(status.status, 204);
      t.is(status.headers.get('range'), `0-${FIRST + SECOND - 1}`);
      const last = await patchChunk(resumed, blob.bytes.subarray(FIRST + SECOND), FIRST + SECOND);
      t.is(last.status, 202);
      t.is(last.headers.get('range'), `0-${blob.size - 1}`);
      const put = await fetchUrl(withDigest(resumed, blob.digest), { method: 'PUT' });
      t.is(put.status, 201);
      t.is(put.headers.get('docker-content-digest'), blob.digest);

      const response = await request(restarted.url, `/v2/${repo}/blobs/${blob.digest}`);
      t.is(response.status, 200);
      t.true((await readBytes(response)).equals(blob.bytes), 'blob bytes differ after the restart');
    });
  });
}

test('an upload finished with its last chunk in the PUT after a SIGKILL restart is byte-identical', async (t) => {
  await withRestart(t, async (first, restart) => {
    const repo = uniqueRepo('restart');
    const blob = makeBlob(3 * MiB + 11);
    const { location } = await startUpload(first.url, repo);
    t.is((await patchChunk(location, blob.bytes.subarray(0, MiB), 0)).status, 202);
    t.is((await patchChunk(location, blob.bytes.subarray(MiB, 2 * MiB + 5), MiB)).status, 202);
    await first.stop('SIGKILL');
    const restarted = await restart();
    const resumed = new URL(location.pathname, restarted.url);
    const put = await fetchUrl(withDigest(resumed, blob.digest), { method: 'PUT', body: blob.bytes.subarray(2 * MiB + 5) });
    t.is(put.status, 201);
    const response = await request(restarted.url, `/v2/${repo}/blobs/${blob.digest}`);
    t.true((await readBytes(response)).equals(blob.bytes));
  });
});

test('a sha512 chunked upload resumes after a SIGKILL restart', async (t) => {
  await withRestart(t, async (first, restart) => {
    const repo = uniqueRepo('restart');
    const blob = makeBlob(MiB + 999, 'sha512');
    const { location } = await startUpload(first.url, repo);
    t.is((await patchChunk(location, blob.bytes.subarray(0, 1000), 0)).status, 202);
    t.is((await patchChunk(location, blob.bytes.subarray(1000, MiB), 1000)).status, 202);
    await first.stop('SIGKILL');
    const restarted = await restart();
    const resumed = new URL(location.pathname, restarted.url);
    t.is((await patchChunk(resumed, blob.bytes.subarray(MiB), MiB)).status, 202);
    const put = await fetchUrl(withDigest(resumed, blob.digest), { method: 'PUT' });
    t.is(put.status, 201);
    const response = await request(restarted.url, `/v2/${repo}/blobs/${blob.digest}`);
    t.true((await readBytes(response)).equals(blob.bytes));
  });
});

test('pushed manifests, tags and blobs survive a SIGKILL restart', async (t) => {
  await withRestart(t, async (first, restart) => {
    const repo = uniqueRepo('restart');
    const image = await pushImage(first.url, repo, { tag: 'v1', layers: 2 });
    await first.stop('SIGKILL');
    const restarted = await restart();

    const manifest = await request(restarted.url, `/v2/${repo}/manifests/v1`);
    t.is(manifest.status, 200);
    t.is(manifest.headers.get('docker-content-digest'), image.digest);
    t.true((await readBytes(manifest)).equals(image.bytes));
    for (const blob of [image.config, ...image.layers]) {
      const response = await request(restarted.url, `/v2/${repo}/blobs/${blob.digest}`);
      t.is(response.status, 200);
      t.true((await readBytes(response)).equals(blob.bytes));
    }
    const tags = await request(restarted.url, `/v2/${repo}/tags/list`);
    t.deepEqual(await tags.json(), { name: repo, tags: ['v1'] });
  });
});

test('an upload cancelled before a restart stays unknown after it', async (t) => {
  await withRestart(t, async (first, restart) => {
    const repo = uniqueRepo('restart');
    const { location } = await startUpload(first.url, repo);
    t.is((await patchChunk(location, Buffer.alloc(100, 1), 0)).status, 202);
    t.is((await fetchUrl(location, { method: 'DELETE' })).status, 204);
    await first.stop('SIGTERM');
    const restarted = await restart();
    const status = await fetchUrl(new URL(location.pathname, restarted.url));
    t.is(status.status, 404);
  });
});

/** Starts a PATCH of `declared` bytes, sends `sent` of them and leaves the body streaming (never finished). */
function startStreamingPatch(location: URL, offset: number, declared: number, sent: Buffer): void {
  const patch = httpRequest(location, {
    method: 'PATCH',
    headers: {
      'Content-Type': 'application/octet-stream',
      'Content-Length': declared,
      'Content-Range': `${offset}-${offset + declared - 1}`,
    },
  });
  patch.on('error', () => undefined);
  patch.write(sent);
}

/** The remaining lifetime (ms) of an upload's lease in the registry's embedded Redis; -2 when there is none. */
async function uploadLeaseTtl(registry: RegistryProcess, uploadId: string): Promise<number> {
  const redis = new Redis({ path: path.join(registry.dataDir, 'redis', 'redis.sock'), lazyConnect: true });
  try {
    await redis.connect();
    return await redis.pttl(`berth:lease:upload:${uploadId}`);
  } finally {
    redis.disconnect();
  }
}

test('after a SIGKILL mid-chunk and a restart, the next PATCH at the recorded offset is accepted within 5 s', async (t) => {
  await withRestart(t, async (first, restart) => {
    const repo = uniqueRepo('restart');
    const blob = makeBlob(FIRST + THIRD);
    const { location, id } = await startUpload(first.url, repo);
    t.is((await patchChunk(location, blob.bytes.subarray(0, FIRST), 0)).status, 202);
    // A second chunk whose body is still arriving when the registry dies: it holds the upload's lease.
    startStreamingPatch(location, FIRST, THIRD, blob.bytes.subarray(FIRST, FIRST + MiB / 4));
    await sleep(500);
    // Read before the kill: the embedded Redis goes with its registry (and keeps the lease in its append-only file).
    t.true((await uploadLeaseTtl(first, id)) > 0, 'the registry held no lease when it was killed: the test proves nothing');
    await first.stop('SIGKILL');

    const restarted = await restart();
    const resumed = new URL(location.pathname, restarted.url);
    const status = await fetchUrl(resumed);
    t.is(status.status, 204);
    t.is(status.headers.get('range'), `0-${FIRST - 1}`);
    const started = Date.now();
    let patch = await patchChunk(resumed, blob.bytes.subarray(FIRST), FIRST);
    // Bounded retries (clients retry a 416 with the upload's Range): the limit is the 5 s the client waits.
    for (let attempt = 0; patch.status === 416 && Date.now() - started < 5_000 && attempt < 50; attempt++) {
      await sleep(100);
      patch = await patchChunk(resumed, blob.bytes.subarray(FIRST), FIRST);
    }
    const waitedMs = Date.now() - started;
    t.log(`next PATCH accepted ${waitedMs} ms after the restart`);
    t.is(patch.status, 202);
    t.true(waitedMs < 5_000);
    t.is((await fetchUrl(withDigest(resumed, blob.digest), { method: 'PUT' })).status, 201);
    const response = await request(restarted.url, `/v2/${repo}/blobs/${blob.digest}`);
    t.true((await readBytes(response)).equals(blob.bytes), 'blob bytes differ after the resumed upload');
  });
});
