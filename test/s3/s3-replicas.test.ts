import test, { type ExecutionContext } from 'ava';
import { createCipheriv, createHash } from 'node:crypto';
import { fetchUrl, request, serverErrorLines } from '../helpers/http-client.js';
import { patchChunk, startUpload, uniqueRepo, withDigest } from '../helpers/oci-content.js';
import { RedisServer } from '../helpers/redis-server.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { S3Server } from '../helpers/s3-server.js';

// Registry replicas: separate processes sharing one Redis and one bucket, as behind a load balancer.
const MiB = 1024 * 1024;
const CHUNK = 10 * MiB;

let redis: RedisServer | undefined;
let s3: S3Server | undefined;

test.before(async () => {
  [redis, s3] = await Promise.all([RedisServer.start(), S3Server.start()]);
});

test.after.always(async () => {
  await Promise.all([redis?.stop(), s3?.stop()]);
});

async function withReplicas(t: ExecutionContext, run: (replicas: RegistryProcess[]) => Promise<void>): Promise<void> {
  const replicas: RegistryProcess[] = [];
  try {
    for (let index = 0; index < 2; index++) {
      replicas.push(await RegistryProcess.start({ args: ['--redis-url', redis!.url], env: s3!.registryEnv({ partSize: CHUNK }) }));
    }
    await run(replicas);
    for (const replica of replicas) t.deepEqual(serverErrorLines(replica.logs), []);
  } finally {
    await Promise.all(replicas.map((replica) => replica.destroy()));
  }
}

/** Chunk `index` of a reproducible pseudo-random blob: AES-CTR keystream, so no chunk is kept once sent. */
function chunkBytes(index: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(index, 0);
  return createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), iv).update(Buffer.alloc(CHUNK));
}

/** PATCHes `count` chunks, the i-th to `replicaFor(i)`, then PUTs on the last one; returns the digest. */
async function pushChunks(
  t: ExecutionContext,
  repo: string,
  count: number,
  replicaFor: (index: number) => RegistryProcess | Promise<RegistryProcess>,
): Promise<string> {
  const { location } = await startUpload((await replicaFor(0)).url, repo);
  const hash = createHash('sha256');
  for (let index = 0; index < count; index++) {
    const bytes = chunkBytes(index);
    hash.update(bytes);
    const response = await patchChunk(new URL(location.pathname, (await replicaFor(index)).url), bytes, index * CHUNK);
    t.is(response.status, 202, `chunk ${index}: ${await response.text()}`);
    t.is(response.headers.get('range'), `0-${(index + 1) * CHUNK - 1}`);
  }
  const digest = `sha256:${hash.digest('hex')}`;
  const put = await fetchUrl(withDigest(new URL(location.pathname, (await replicaFor(count - 1)).url), digest), { method: 'PUT' });
  t.is(put.status, 201, await put.text());
  t.is(put.headers.get('docker-content-digest'), digest);
  return digest;
}

/** Pulls the blob (following the redirect to S3) and hashes it as it streams: nothing is held in memory. */
async function assertPullsBack(t: ExecutionContext, registry: RegistryProcess, repo: string, digest: string, size: number): Promise<void> {
  const response = await request(registry.url, `/v2/${repo}/blobs/${digest}`);
  t.is(response.status, 200);
  const hash = createHash('sha256');
  let received = 0;
  for await (const data of response.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(data);
    received += data.length;
  }
  t.is(received, size);
  t.is(`sha256:${hash.digest('hex')}`, digest, 'pulled bytes differ from the pushed ones');
}

test('a 100 MiB blob pushed in 10 MiB chunks alternating between two replicas verifies and pulls back byte-identical', async (t) => {
  await withReplicas(t, async (replicas) => {
    const repo = uniqueRepo('replicas');
    const digest = await pushChunks(t, repo, 10, (index) => replicas[index % 2]!);
    for (const replica of replicas) t.true((await request(replica.url, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).ok);
    await assertPullsBack(t, replicas[0]!, repo, digest, 10 * CHUNK);
    t.deepEqual(await s3!.keys('_uploads/'), []);
    t.deepEqual(await s3!.openMultipartUploads(), []);
  });
});

test('a replica killed with SIGKILL between two chunks leaves an upload the other replica finishes', async (t) => {
  await withReplicas(t, async ([doomed, survivor]) => {
    const repo = uniqueRepo('replicas');
    const digest = await pushChunks(t, repo, 3, async (index) => {
      if (index === 1) await doomed!.stop('SIGKILL');
      return index === 0 ? doomed! : survivor!;
    });
    t.not(doomed!.child.signalCode, null, 'the first replica was killed');
    await assertPullsBack(t, survivor!, repo, digest, 3 * CHUNK);
  });
});
