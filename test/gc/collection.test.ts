import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { collectGarbage, collectWithCli, gcEnv, pullProblems } from '../helpers/gc.js';
import { readBytes, request } from '../helpers/http-client.js';
import {
  EMPTY_CONFIG,
  artifactManifest,
  descriptorOf,
  makeBlob,
  pushBlob,
  patchChunk,
  pushImage,
  pushIndex,
  pushManifest,
  startUpload,
  uniqueRepo,
} from '../helpers/oci-content.js';
import type { RegistryProcess } from '../helpers/registry-process.js';
import { filesystemBackend, s3Backend, type StorageBackend } from '../helpers/storage-backends.js';

// Every run here collects the whole registry, so the tests of one registry run one at a time.
const GRACE_SECONDS = 0.2;
const PAST_GRACE_MS = 400;
const backends: StorageBackend[] = [filesystemBackend(), s3Backend('s3', { redirect: false })];
const registries = new Map<StorageBackend, RegistryProcess>();

test.before(async () => {
  const env = gcEnv(GRACE_SECONDS, { BERTH_GC__UPLOAD_MAX_AGE_SECONDS: '1' });
  await Promise.all(backends.map(async (backend) => registries.set(backend, await backend.startRegistry({ env }))));
});

test.after.always(async () => {
  await Promise.all([...registries.values()].map((registry) => registry.destroy()));
  await Promise.all(backends.map((backend) => backend.stop()));
});

async function deleteManifest(registry: RegistryProcess, repo: string, digest: string): Promise<void> {
  const response = await request(registry.url, `/v2/${repo}/manifests/${digest}`, { method: 'DELETE' });
  if (response.status !== 202) throw new Error(`DELETE manifest: ${response.status}`);
}

for (const backend of backends) {
  const registry = () => registries.get(backend)!;

  test.serial(`${backend.name}: deleting an image frees its config and layers while a layer another image uses stays`, async (t) => {
    const repo = uniqueRepo('gc');
    const shared = makeBlob(4096);
    const doomed = await pushImage(registry().url, repo, { tag: 'old', layers: [shared, makeBlob(8192)] });
    const keptRepo = uniqueRepo('gc');
    await pushImage(registry().url, keptRepo, { tag: 'new', layers: [shared, makeBlob(8192)] });
    await deleteManifest(registry(), repo, doomed.digest);
    await sleep(PAST_GRACE_MS);

    const report = await collectGarbage(registry());

    t.false(await backend.hasBlob(registry(), doomed.layers[1]!.digest), 'the deleted image layer is still stored');
    t.false(await backend.hasBlob(registry(), doomed.config.digest), 'the deleted image config is still stored');
    t.true(await backend.hasBlob(registry(), shared.digest), 'the shared layer was deleted');
    t.true(report.blobsDeleted >= 2);
    t.true(report.bytesDeleted >= doomed.layers[1]!.size + doomed.config.size);
    const head = await request(registry().url, `/v2/${repo}/blobs/${doomed.layers[1]!.digest}`, { method: 'HEAD' });
    t.is(head.status, 404);
    t.deepEqual(await pullProblems(registry().url, keptRepo, 'new'), []);
  });

  test.serial(`${backend.name}: a small blob served from memory is 404 once garbage collection deleted it`, async (t) => {
    const repo = uniqueRepo('gc');
    const image = await pushImage(registry().url, repo, { tag: 'cached' });
    const configUrl = `/v2/${repo}/blobs/${image.config.digest}`;
    for (let pull = 0; pull < 2; pull++) {
      t.true((await readBytes(await request(registry().url, configUrl))).equals(image.config.bytes), 'the config is served');
    }
    await deleteManifest(registry(), repo, image.digest);
    await sleep(PAST_GRACE_MS);

    await collectGarbage(registry());

    t.false(await backend.hasBlob(registry(), image.config.digest), 'the config is still stored');
    const response = await request(registry().url, configUrl);
    t.is(response.status, 404);
    t.is(((await response.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'BLOB_UNKNOWN');
  });

  test.serial(`${backend.name}: a dry run reports exactly what the real run then deletes and changes nothing`, async (t) => {
    const repo = uniqueRepo('gc');
    const image = await pushImage(registry().url, repo, { tag: 'gone', layers: 2 });
    await deleteManifest(registry(), repo, image.digest);
    await sleep(PAST_GRACE_MS);

    const dry = await collectGarbage(registry(), { dryRun: true });

    t.true(dry.dryRun);
    t.is(dry.blobsDeleted, 3);
    for (const blob of [image.config, ...image.layers]) {
      t.true(await backend.hasBlob(registry(), blob.digest), 'a dry run deleted bytes');
      const head = await request(registry().url, `/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' });
      t.is(head.status, 200, 'a dry run dropped a link or a record');
    }
    await sleep(PAST_GRACE_MS);
    const real = await collectGarbage(registry());
    t.like(real, { dryRun: false, blobsDeleted: dry.blobsDeleted, bytesDeleted: dry.bytesDeleted, linksDeleted: dry.linksDeleted });
  });

  test.serial(`${backend.name}: an upload session idle past its maximum age is deleted with its bytes`, async (t) => {
    const repo = uniqueRepo('gc');
    const upload = await startUpload(registry().url, repo);
    const chunk = makeBlob(1024);
    t.is((await patchChunk(upload.location, chunk.bytes, 0)).status, 202);
    await sleep(1_200);

    const report = await collectGarbage(registry());

    t.true(report.uploadsDeleted >= 1);
    const status = await request(registry().url, `/v2/${repo}/blobs/uploads/${upload.id}`);
    t.is(status.status, 404);
    t.deepEqual(await backend.uploadLeftovers(registry(), upload.id, [chunk.digest]), []);
  });
}

test.serial(
  'filesystem: berth gc --delete-untagged deletes manifests no tag reaches, with their referrers, and keeps index children',
  async (t) => {
    const registry = registries.get(backends[0]!)!;
    const repo = uniqueRepo('gc');
    const child = await pushImage(registry.url, repo, { layers: 1 });
    await pushBlob(registry.url, repo, EMPTY_CONFIG);
    await pushIndex(registry.url, repo, [{ manifest: child, platform: { os: 'linux', architecture: 'amd64' } }], { tag: 'multi' });
    const childSignature = await pushManifest(
      registry.url,
      repo,
      artifactManifest({ artifactType: 'application/vnd.test.signature', subject: descriptorOf(child, child.mediaType) }),
    );
    const untagged = await pushImage(registry.url, repo, { layers: 1 });
    const untaggedSbom = await pushManifest(
      registry.url,
      repo,
      artifactManifest({ artifactType: 'application/vnd.test.sbom', subject: descriptorOf(untagged, untagged.mediaType) }),
    );
    await sleep(PAST_GRACE_MS);

    const { code, report, stderr } = await collectWithCli(registry, ['--delete-untagged'], gcEnv(GRACE_SECONDS));

    t.is(code, 0, stderr);
    t.is(report?.manifestsDeleted, 2);
    for (const gone of [untagged, untaggedSbom]) {
      t.is((await request(registry.url, `/v2/${repo}/manifests/${gone.digest}`, { method: 'HEAD' })).status, 404);
    }
    t.is((await request(registry.url, `/v2/${repo}/manifests/${childSignature.digest}`, { method: 'HEAD' })).status, 200);
    t.false(await backends[0]!.hasBlob(registry, untagged.layers[0]!.digest));
    t.deepEqual(await pullProblems(registry.url, repo, 'multi'), []);
  },
);
