import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { collectGarbage, gcEnv, pullProblems, tagsOf, type GcReport } from '../helpers/gc.js';
import { request } from '../helpers/http-client.js';
import { blobOf, imageManifest, makeBlob, postBlob, putManifest, type Blob } from '../helpers/oci-content.js';
import { filesystemBackend, s3Backend, type StorageBackend } from '../helpers/storage-backends.js';

// Pushers race a collector running back to back with a grace period far shorter than a push, so blobs a
// push relies on (skipped after a HEAD, mounted, or uploaded a moment ago) are deleted under it whenever
// nothing references them yet. The registry may then refuse the manifest (MANIFEST_BLOB_UNKNOWN, after
// which the pusher uploads again, as clients do) but must never store one whose blobs are gone.
// s3rver takes a few hundred ms per upload, so S3 gets the longer grace: still shorter than some pushes.
const backends: Array<{ backend: StorageBackend; graceSeconds: number }> = [
  { backend: filesystemBackend(), graceSeconds: 0.3 },
  { backend: s3Backend('s3', { redirect: false }), graceSeconds: 1 },
];
const DURATION_MS = 20_000;
const PUSHERS = 4;
const REPOSITORIES = ['stress/a', 'stress/b'];
const TAGS_PER_PUSHER = 3;
const MAX_MANIFEST_ATTEMPTS = 10;

interface PushStats {
  pushes: number;
  refusedManifests: number;
  problems: string[];
}

test.after.always(async () => {
  await Promise.all(backends.map(({ backend }) => backend.stop()));
});

for (const { backend, graceSeconds } of backends) {
  test(`${backend.name}: pushes, tag deletions and re-pushes racing a collector in a loop never leave a tag that does not pull completely`, async (t) => {
    const registry = await backend.startRegistry({ env: gcEnv(graceSeconds) });
    try {
      const sharedLayers = Array.from({ length: 6 }, () => makeBlob(32 * 1024));
      const deadline = Date.now() + DURATION_MS;
      const reports: GcReport[] = [];
      const collecting = (async () => {
        while (Date.now() < deadline) reports.push(await collectGarbage(registry));
      })();
      const stats = await Promise.all(
        Array.from({ length: PUSHERS }, (_unused, index) => pushUntil(registry.url, index, sharedLayers, deadline, graceSeconds * 1000)),
      );
      await collecting;

      const problems = stats.flatMap((pusher) => pusher.problems);
      await sleep(graceSeconds * 1000 + 200);
      reports.push(await collectGarbage(registry));
      for (const repository of REPOSITORIES) {
        for (const tag of await tagsOf(registry.url, repository)) problems.push(...(await pullProblems(registry.url, repository, tag)));
      }
      const deleted = reports.reduce((sum, report) => sum + report.blobsDeleted, 0);
      const pushes = stats.reduce((sum, pusher) => sum + pusher.pushes, 0);
      const refused = stats.reduce((sum, pusher) => sum + pusher.refusedManifests, 0);
      t.log(
        `${pushes} images pushed, ${refused} manifest PUTs refused and retried, ${reports.length} collections deleted ${deleted} blobs`,
      );
      t.deepEqual(problems, []);
      t.true(pushes >= 20, 'too few pushes to mean anything');
      t.true(deleted > 0, 'the collector never deleted anything, so it never raced a push');
      t.true(refused > 0, 'no manifest PUT ever lost a blob to the collector, so the refusal path was not exercised');
    } finally {
      await registry.destroy();
    }
  });
}

/**
 * One pusher: images of two shared layers, one own layer and a fresh config, under its own tags, pushed as
 * docker does (HEAD first, skip what exists, else mount or upload; blobs in parallel); then it pulls what
 * it pushed, and sometimes deletes the tag or the whole manifest so that its blobs become garbage.
 */
async function pushUntil(baseUrl: string, pusher: number, sharedLayers: Blob[], deadline: number, graceMs: number): Promise<PushStats> {
  const stats: PushStats = { pushes: 0, refusedManifests: 0, problems: [] };
  for (let round = 0; Date.now() < deadline; round++) {
    const repository = REPOSITORIES[round % REPOSITORIES.length]!;
    const tag = `p${pusher}-${round % TAGS_PER_PUSHER}`;
    const layers = [pick(sharedLayers), pick(sharedLayers), makeBlob(16 * 1024)].filter(unique);
    const config = blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux', pusher, round }));
    const manifest = imageManifest({ config, layers });
    let stored = false;
    for (let attempt = 0; attempt < MAX_MANIFEST_ATTEMPTS && !stored; attempt++) {
      // After a refusal the blobs are uploaded without asking first: the registry just said one is gone.
      await Promise.all([config, ...layers].map((blob) => ensureBlob(baseUrl, repository, blob, attempt === 0)));
      // A slow client now and then: its fresh blobs outlive the grace period before the manifest names them.
      if (attempt === 0 && round % 5 === 0) await sleep(2 * graceMs + 300);
      const response = await putManifest(baseUrl, repository, tag, manifest);
      const body = await response.text();
      if (response.status === 201) stored = true;
      else if (response.status === 400 && body.includes('MANIFEST_BLOB_UNKNOWN')) stats.refusedManifests++;
      else stats.problems.push(`PUT ${repository}:${tag}: ${response.status} ${body}`);
    }
    if (!stored) {
      stats.problems.push(`PUT ${repository}:${tag} refused ${MAX_MANIFEST_ATTEMPTS} times`);
      continue;
    }
    stats.pushes++;
    stats.problems.push(...(await pullProblems(baseUrl, repository, tag)));
    await maybeDelete(baseUrl, repository, round % 4 === 1 ? tag : round % 4 === 2 ? manifest.digest : undefined);
  }
  return stats;
}

/** HEAD, then (when `checkFirst` and it exists) nothing; else a mount from the other repository, else an upload. */
async function ensureBlob(baseUrl: string, repository: string, blob: Blob, checkFirst: boolean): Promise<void> {
  if (checkFirst) {
    const head = await request(baseUrl, `/v2/${repository}/blobs/${blob.digest}`, { method: 'HEAD' });
    if (head.status === 200) return;
    const other = REPOSITORIES.find((name) => name !== repository)!;
    const mount = await request(baseUrl, `/v2/${repository}/blobs/uploads/?mount=${blob.digest}&from=${other}`, { method: 'POST' });
    await mount.arrayBuffer();
    if (mount.status === 201) return;
  }
  const response = await postBlob(baseUrl, repository, blob);
  await response.arrayBuffer();
  if (response.status !== 201) throw new Error(`upload of ${blob.digest}: ${response.status}`);
}

async function maybeDelete(baseUrl: string, repository: string, reference: string | undefined): Promise<void> {
  if (reference === undefined) return;
  const response = await request(baseUrl, `/v2/${repository}/manifests/${reference}`, { method: 'DELETE' });
  await response.arrayBuffer();
}

function pick<T>(items: T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

function unique(blob: Blob, index: number, all: Blob[]): boolean {
  return all.findIndex((other) => other.digest === blob.digest) === index;
}
