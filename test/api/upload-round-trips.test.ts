import http from 'node:http';
import test from 'ava';
import type { Redis } from 'ioredis';
import { eventually } from '../helpers/eventually.js';
import { fetchUrl } from '../helpers/http-client.js';
import { makeBlob, patchChunk, pushBlobInChunks, startUpload, uniqueRepo, withDigest } from '../helpers/oci-content.js';
import { RedisServer } from '../helpers/redis-server.js';
import { RegistryProcess } from '../helpers/registry-process.js';

// Under appendfsync always every Redis write waits for an fsync of Redis's log, so the Redis commands a chunk
// costs bound how fast a chunked push can go. Counted with MONITOR on a real redis-server the registry uses.
let redis: RedisServer | undefined;
let registry: RegistryProcess | undefined;
let monitor: Redis | undefined;
let client: Redis | undefined;
const seen: string[][] = [];

test.before(async () => {
  redis = await RedisServer.start();
  registry = await RegistryProcess.start({ env: { BERTH_REDIS__URL: redis.url } });
  client = redis.client();
  // monitor() opens a connection of its own.
  monitor = await client.monitor();
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    // Commands a script runs are reported too, from 'lua'.
    if (source !== 'lua') seen.push(args);
  });
});

test.after.always(async () => {
  monitor?.disconnect();
  client?.disconnect();
  await registry?.destroy();
  await redis?.stop();
});

/** The Redis commands that name the upload (its session or its lease) or the blob's digest while `request` runs. */
async function commandsOf(
  uploadId: string,
  digest: string,
  request: () => Promise<Response>,
): Promise<{ status: number; commands: string[][] }> {
  // MONITOR reports a command as Redis runs it; an ECHO after the answer marks where the request's commands end.
  seen.length = 0;
  const response = await request();
  const marker = `end-of-request`;
  await client!.echo(marker);
  const deadline = Date.now() + 5_000;
  while (!seen.some((args) => args.includes(marker)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  return { status: response.status, commands: seen.filter((args) => args.some((arg) => arg.includes(uploadId) || arg.includes(digest))) };
}

test('a chunk costs two Redis commands (claim with session read, offset record with lease release) and the final PUT three (claim, commit check with lease renewal before the move, record with release)', async (t) => {
  const repo = uniqueRepo('round-trips');
  // Loads every script into Redis first: a script's first run is an EVALSHA refused NOSCRIPT and an EVAL.
  t.is((await pushBlobInChunks(registry!.url, repo, makeBlob(1024), [512, 512])).status, 201);
  const blob = makeBlob(3 * 1024 * 1024);
  const { location, id: uploadId } = await startUpload(registry!.url, repo);
  const half = blob.size / 2;
  for (const start of [0, half]) {
    const chunk = await commandsOf(uploadId, blob.digest, () => patchChunk(location, blob.bytes.subarray(start, start + half), start));
    t.is(chunk.status, 202);
    t.is(chunk.commands.length, 2, `a chunk ran ${JSON.stringify(chunk.commands.map((args) => args[0]))}`);
  }
  const final = await commandsOf(uploadId, blob.digest, () => fetchUrl(withDigest(location, blob.digest), { method: 'PUT' }));
  t.is(final.status, 201);
  t.is(final.commands.length, 3, `the final PUT ran ${JSON.stringify(final.commands.map((args) => args[0]))}`);
  t.is(await client!.keys('*lease:upload*').then((keys) => keys.length), 0, 'no upload lease is left held');
});

test('a final PUT whose upload lease another holder took while its body arrived is refused with 416 and commits nothing', async (t) => {
  const repo = uniqueRepo('round-trips');
  const blob = makeBlob(2 * 1024 * 1024);
  const { location, id: uploadId } = await startUpload(registry!.url, repo);
  const url = withDigest(location, blob.digest);
  let answer!: (status: number) => void;
  const status = new Promise<number>((resolve) => (answer = resolve));
  const put = http.request(url, { method: 'PUT', headers: { 'Content-Length': String(blob.size) } }, (res) => {
    res.resume();
    answer(res.statusCode ?? 0);
  });
  put.once('error', (error) => t.fail(String(error)));
  put.write(blob.bytes.subarray(0, blob.size / 2));
  const [leaseKey] = await eventually(
    () => client!.keys(`*lease:upload*${uploadId}*`),
    (keys) => keys.length === 1,
  );
  // As if this registry had stalled past the lease's TTL and another request had claimed the upload.
  await client!.set(leaseKey!, 'another-holder', 'PX', 60_000);
  put.end(blob.bytes.subarray(blob.size / 2));
  t.is(await status, 416);
  t.is((await fetchUrl(new URL(`/v2/${repo}/blobs/${blob.digest}`, registry!.url), { method: 'HEAD' })).status, 404);
  await client!.del(leaseKey!);
});
