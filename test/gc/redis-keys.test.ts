import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { SCRATCH_SETS } from '../../server/gc/gc-store.js';
import { RegistryKeys } from '../../server/metadata/keys.js';
import { RedisGcStore } from '../../server/metadata/redis-gc-store.js';
import { sharedRedis } from '../helpers/shared-redis.js';

const LAYOUT_SOURCE = fileURLToPath(new URL('../../../server/metadata/redis-scripts.ts', import.meta.url));

// Each builder of RegistryKeys called with the placeholders the layout comment uses; a new builder must be added here.
const PLACEHOLDER_ARGUMENTS: Record<string, string[]> = {
  repositories: [],
  repoTags: ['<repo>'],
  repoTagMap: ['<repo>'],
  repoManifests: ['<repo>'],
  repoBlobs: ['<repo>'],
  repoReferrers: ['<repo>', '<subject>'],
  manifest: ['<digest>'],
  blob: ['<digest>'],
  upload: ['<id>'],
  lease: ['<name>'],
  gcQueue: [],
  gcTombstones: [],
  authUsers: [],
  authRobots: [],
  authRobotsLastUsed: [],
  authRules: [],
  authGenerations: [],
  loginFailuresOfAccount: ['<a>'],
  loginFailuresOfAddress: ['<a>'],
  webhookQueue: ['<endpoint>'],
  webhookAttempts: ['<endpoint>'],
  webhookDeadLetters: ['<endpoint>'],
  webhookLog: [],
  maintenanceReadOnly: [],
  durableAckMarker: [],
};

test('every key the registry builds is in the key layout documented at the top of redis-scripts.ts', async (t) => {
  const source = await readFile(LAYOUT_SOURCE, 'utf8');
  const layout = source.slice(0, source.indexOf('*/'));
  const documented = new Set([...layout.matchAll(/^ \*\s+(<p>\S+)/gm)].map((match) => match[1]!));
  const keys = new RegistryKeys('<p>') as unknown as Record<string, (...args: string[]) => string>;
  const builders = Object.getOwnPropertyNames(RegistryKeys.prototype).filter(
    (name) => !['constructor', 'key', 'repoKey', 'gcScratch'].includes(name),
  );
  t.deepEqual(builders.sort(), Object.keys(PLACEHOLDER_ARGUMENTS).sort(), 'a key builder without placeholder arguments in this test');
  const built = [
    ...builders.map((name) => keys[name]!(...PLACEHOLDER_ARGUMENTS[name]!)),
    ...SCRATCH_SETS.map((set) => new RegistryKeys('<p>').gcScratch(set)),
  ];
  for (const key of built) t.true(documented.has(key), `${key} is not in the documented layout`);
});

const redis = sharedRedis();

async function collect<T>(pages: AsyncIterable<T[]>): Promise<T[]> {
  const all: T[] = [];
  for await (const page of pages) all.push(...page);
  return all;
}

async function writeRecords(keys: RegistryKeys, repository: string, digest: string): Promise<void> {
  await redis().hset(keys.blob(digest), 'size', '3', 'createdAt', '0');
  await redis().hset(keys.manifest(digest), 'content', '{}', 'mediaType', 'application/vnd.oci.image.manifest.v1+json');
  await redis().sadd(keys.repoBlobs(repository), digest);
  await redis().hset(
    keys.upload(`upload-of-${repository.replace('/', '-')}`),
    'repository',
    repository,
    'storeState',
    '',
    'updatedAt',
    '1',
  );
}

test('the collector lists only the records under its own key prefix, even a prefix with glob characters', async (t) => {
  const mine = new RegistryKeys('team*[1]:');
  // Keys another registry on the same Redis writes, which the glob `team*[1]:` would match unescaped.
  const theirs = new RegistryKeys('team-a1:');
  const ownDigest = `sha256:${'1'.repeat(64)}`;
  const otherDigest = `sha256:${'2'.repeat(64)}`;
  await writeRecords(mine, 'library/app', ownDigest);
  await writeRecords(theirs, 'other/app', otherDigest);

  const gc = new RedisGcStore(redis(), mine.prefix);
  t.deepEqual(await collect(gc.blobs()), [ownDigest]);
  t.deepEqual(await collect(gc.manifestRecords()), [ownDigest]);
  t.deepEqual(await collect(gc.linkedRepositories()), ['library/app']);
  t.deepEqual(await collect(gc.uploads()), [{ id: 'upload-of-library-app', repository: 'library/app', storeState: '', updatedAt: '1' }]);
});
