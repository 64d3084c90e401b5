import test from 'ava';
import type { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { collectGarbage, gcEnv } from '../helpers/gc.js';
import { readBytes, request } from '../helpers/http-client.js';
import { MediaType } from '../../oci/media-types.js';
import {
  blobOf,
  imageManifest,
  makeBlob,
  pushBlob,
  pushManifest,
  putManifest,
  uniqueRepo,
  type Blob,
  type Manifest,
} from '../helpers/oci-content.js';
import { RedisServer } from '../helpers/redis-server.js';
import { RegistryProcess } from '../helpers/registry-process.js';

// Manifest records (m:<digest>) in a real Redis the registry shares with the test: they must go with the
// last repository that links them, and never go while one still does.
const GRACE_SECONDS = 0.2;
const PAST_GRACE_MS = 400;
const RACE_ROUNDS = 100;
const RACE_BUDGET_MS = 10_000;

let redisServer: RedisServer | undefined;
let registry: RegistryProcess | undefined;
let redis: Redis | undefined;

test.before(async () => {
  redisServer = await RedisServer.start();
  registry = await RegistryProcess.start({
    args: ['--redis-url', redisServer.url],
    env: gcEnv(GRACE_SECONDS, { BERTH_GC__DELETE_UNTAGGED: 'true' }),
  });
  redis = redisServer.client();
});

test.after.always(async () => {
  redis?.disconnect();
  await registry?.destroy();
  await redisServer?.stop();
});

const url = () => registry!.url;

async function recordExists(digest: string): Promise<boolean> {
  return (await redis!.exists(`berth:m:${digest}`)) === 1;
}

async function manifestRecordCount(): Promise<number> {
  let count = 0;
  for await (const keys of redis!.scanStream({ match: 'berth:m:*', count: 1000 }) as AsyncIterable<string[]>) count += keys.length;
  return count;
}

/** Pushes the blobs of `manifest` and the manifest itself (by tag if given) to each repository. */
async function pushTo(repos: string[], blobs: Blob[], manifest: Manifest, tag?: string): Promise<void> {
  for (const repo of repos) {
    for (const blob of blobs) await pushBlob(url(), repo, blob);
    await pushManifest(url(), repo, manifest, tag);
  }
}

function anImage(): { blobs: Blob[]; manifest: Manifest } {
  const config = blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: makeBlob(8).digest }));
  const layer = makeBlob(128);
  return { blobs: [config, layer], manifest: imageManifest({ config, layers: [layer] }) };
}

async function deleteManifest(repo: string, digest: string): Promise<number> {
  const response = await request(url(), `/v2/${repo}/manifests/${digest}`, { method: 'DELETE' });
  await response.arrayBuffer();
  return response.status;
}

async function manifestStatus(repo: string, digest: string): Promise<number> {
  const response = await request(url(), `/v2/${repo}/manifests/${digest}`);
  await readBytes(response);
  return response.status;
}

test.serial('a manifest record stays while another repository links the manifest and goes with the last one', async (t) => {
  const { blobs, manifest } = anImage();
  const [first, second] = [uniqueRepo('records'), uniqueRepo('records')];
  await pushTo([first, second], blobs, manifest, 'v1');

  t.is(await deleteManifest(first, manifest.digest), 202);
  t.true(await recordExists(manifest.digest), 'the record went while another repository links it');
  t.is(await manifestStatus(second, manifest.digest), 200);
  t.is(await manifestStatus(second, 'v1'), 200);

  t.is(await deleteManifest(second, manifest.digest), 202);
  t.false(await recordExists(manifest.digest), 'the record outlived its last link');
  t.is(await manifestStatus(second, manifest.digest), 404);
});

test.serial('garbage collection of untagged manifests takes their records, and only theirs', async (t) => {
  const tagged = anImage();
  const untagged = anImage();
  const repo = uniqueRepo('records');
  await pushTo([repo], tagged.blobs, tagged.manifest, 'kept');
  await pushTo([repo], untagged.blobs, untagged.manifest);
  await sleep(PAST_GRACE_MS);

  const report = await collectGarbage(registry!);

  t.true(report.manifestsDeleted >= 1);
  t.false(await recordExists(untagged.manifest.digest), 'the untagged manifest record is still there');
  t.true(await recordExists(tagged.manifest.digest));
  t.is(await manifestStatus(repo, 'kept'), 200);
});

test.serial('a record from before links were counted is deleted by the collector once no repository links it', async (t) => {
  const { blobs, manifest } = anImage();
  const [first, second] = [uniqueRepo('records'), uniqueRepo('records')];
  await pushTo([first, second], blobs, manifest, 'v1');
  await redis!.hdel(`berth:m:${manifest.digest}`, 'links');

  t.is(await deleteManifest(first, manifest.digest), 202);
  t.is(await deleteManifest(second, manifest.digest), 202);
  t.true(await recordExists(manifest.digest), 'an uncounted record cannot be known to be the last');
  await sleep(PAST_GRACE_MS);
  const report = await collectGarbage(registry!);
  t.true(report.manifestRecordsDeleted >= 1);
  t.false(await recordExists(manifest.digest));
});

test.serial('after collection the registry holds exactly one manifest record per linked manifest', async (t) => {
  const images = Array.from({ length: 6 }, anImage);
  const repos = [uniqueRepo('records'), uniqueRepo('records')];
  for (const [index, { blobs, manifest }] of images.entries()) await pushTo(repos, blobs, manifest, `t${index}`);
  for (const { manifest } of images.slice(0, 3)) for (const repo of repos) await deleteManifest(repo, manifest.digest);
  // An orphan as older registries left them: a record nobody links, with no link count.
  await redis!.hset('berth:m:sha256:' + '0'.repeat(64), 'mediaType', MediaType.ociManifest, 'content', '{}', 'touchedAt', '0');
  await sleep(PAST_GRACE_MS);
  await collectGarbage(registry!);

  const linked = new Set<string>();
  for await (const members of redis!.scanStream({ match: 'berth:r:*:m', type: 'set' }) as AsyncIterable<string[]>) {
    for (const key of members) for (const digest of await redis!.smembers(key)) linked.add(digest);
  }
  t.is(await manifestRecordCount(), linked.size);
  for (const digest of linked) t.true(await recordExists(digest), `${digest} is linked but has no record`);
});

test.serial('a delete racing a re-push of the same manifest never leaves a linked manifest without its record', async (t) => {
  const { blobs, manifest } = anImage();
  const repos = [uniqueRepo('race'), uniqueRepo('race')];
  await pushTo(repos, blobs, manifest, 'v1');
  const deadline = Date.now() + RACE_BUDGET_MS;
  let rounds = 0;
  for (; rounds < RACE_ROUNDS && Date.now() < deadline; rounds++) {
    await Promise.all(
      repos.flatMap((repo) => [
        deleteManifest(repo, manifest.digest),
        putManifest(url(), repo, 'v1', manifest).then((response) => response.arrayBuffer()),
      ]),
    );
    const linkedIn = await Promise.all(repos.map((repo) => redis!.sismember(`berth:r:${repo}:m`, manifest.digest)));
    const links = linkedIn.filter((member) => member === 1).length;
    const record = await redis!.hget(`berth:m:${manifest.digest}`, 'links');
    if (links > 0) {
      t.is(record, String(links), `round ${rounds}: linked in ${links} repositories, record links ${record}`);
      for (const [index, repo] of repos.entries()) if (linkedIn[index]) t.is(await manifestStatus(repo, manifest.digest), 200);
    } else {
      t.false(await recordExists(manifest.digest), `round ${rounds}: no repository links it but its record stayed`);
    }
  }
  t.true(rounds >= 20, `only ${rounds} rounds ran`);
});

test.serial('a record without a per-repository type (pushed before types were kept per repository) keeps serving its type', async (t) => {
  const config = blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: makeBlob(8).digest }));
  const bare = imageManifest({ config, extra: { mediaType: undefined } });
  const [older, newer] = [uniqueRepo('legacy'), uniqueRepo('legacy')];
  for (const repo of [older, newer]) await pushBlob(url(), repo, config);
  t.is((await putManifest(url(), older, 'v1', bare, MediaType.ociManifest)).status, 201);
  // As an older registry stored it: the type only in the global record.
  await redis!.hdel(`berth:r:${older}:mt`, bare.digest);
  t.is((await putManifest(url(), newer, 'v1', bare, MediaType.dockerManifest)).status, 201);

  const fromOlder = await request(url(), `/v2/${older}/manifests/v1`, { headers: { Accept: MediaType.ociManifest } });
  t.is(fromOlder.status, 200);
  t.is(fromOlder.headers.get('content-type'), MediaType.ociManifest);
  t.true((await readBytes(fromOlder)).equals(bare.bytes));
  const fromNewer = await request(url(), `/v2/${newer}/manifests/v1`);
  t.is(fromNewer.headers.get('content-type'), MediaType.dockerManifest);
  await fromNewer.arrayBuffer();
});
