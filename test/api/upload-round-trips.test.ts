import { createHash } from 'node:crypto';
import http from 'node:http';
import test from 'ava';
import type { Redis } from 'ioredis';
import { eventually } from '../helpers/eventually.js';
import { fetchUrl } from '../helpers/http-client.js';
import { makeBlob, patchChunk, pushBlobInChunks, startUpload, uniqueRepo, withDigest } from '../helpers/oci-content.js';
import { RedisServer } from '../helpers/redis-server.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { renewLeaseScript } from '../../server/metadata/redis-scripts.js';

// Under appendfsync always every Redis write waits for an fsync of Redis's log, so the Redis commands a chunk
// costs bound how fast a chunked push can go. Counted with MONITOR on a real redis-server the registry uses.
let redis: RedisServer | undefined;
let registry: RegistryProcess | undefined;
let monitor: Redis | undefined;
let client: Redis | undefined;
const seen: string[][] = [];
// A request renews its upload lease every 2 s while a body streams: on a loaded machine a chunk can take that
// long, and such a renewal is the time a body took, not a cost of each chunk.
const RENEW_LEASE_SHA = createHash('sha1').update(renewLeaseScript).digest('hex');

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

/** Sends an ECHO of `marker` and waits (bounded) until MONITOR has reported it. */
async function markAndWait(marker: string): Promise<void> {
  await client!.echo(marker);
  const deadline = Date.now() + 5_000;
  while (!seen.some((args) => args.includes(marker)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** The Redis commands that name the upload (its session or its lease) or the blob's digest while `request` runs. */
async function commandsOf(
  uploadId: string,
  digest: string,
  request: () => Promise<Response>,
): Promise<{ status: number; commands: string[][] }> {
  // MONITOR reports a command as Redis runs it, to its own connection and later than the reply: an ECHO before
  // the request and one after its answer mark where the request's commands begin and end.
  await markAndWait('start-of-request');
  seen.length = 0;
  const response = await request();
  await markAndWait('end-of-request');
  const named = seen.filter((args) => args.some((arg) => arg.includes(uploadId) || arg.includes(digest)));
  return { status: response.status, commands: named.filter((args) => args[1] !== RENEW_LEASE_SHA) };
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
    t.is(chunk.commands.length, 2, `a chunk ran ${JSON.stringify(chunk.commands)}`);
  }
  const final = await commandsOf(uploadId, blob.digest, () => fetchUrl(withDigest(location, blob.digest), { method: 'PUT' }));
  t.is(final.status, 201);
  t.is(final.commands.length, 3, `the final PUT ran ${JSON.stringify(final.commands.map((args) => args[0]))}`);
  t.is(await client!.keys(`*lease:upload*${uploadId}*`).then((keys) => keys.length), 0, 'no upload lease is left held');
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
