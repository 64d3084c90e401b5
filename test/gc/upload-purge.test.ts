import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { assertRegistryError, fetchUrl } from '../helpers/http-client.js';
import { makeBlob, patchChunk, startUpload, uniqueRepo, withDigest } from '../helpers/oci-content.js';
import { filesystemBackend, s3Backend, type StorageBackend } from '../helpers/storage-backends.js';

// Everything default but the age (and how often the purge looks): the purge is on without being asked for.
// The age leaves a loaded CI machine several seconds per chunk of the active upload.
const SHORT_AGE = { BERTH_UPLOADS__PURGE__MAX_AGE_SECONDS: '4', BERTH_UPLOADS__PURGE__INTERVAL_SECONDS: '1' };
const CHUNK = 64 * 1024;

for (const backend of [filesystemBackend(), s3Backend('s3 (upload purge)')] satisfies StorageBackend[]) {
  test(`${backend.name}: an abandoned upload's session and bytes disappear after their age by default, while one that keeps receiving chunks is kept`, async (t) => {
    const registry = await backend.startRegistry({ env: SHORT_AGE });
    t.teardown(async () => {
      await registry.destroy();
      await backend.stop();
    });
    const repo = uniqueRepo('purge');
    const blob = makeBlob(CHUNK * 60);

    const abandoned = await startUpload(registry.url, repo);
    t.is((await patchChunk(abandoned.location, blob.bytes.subarray(0, CHUNK), 0)).status, 202);
    t.deepEqual(
      await backend.uploadLeftovers(registry, abandoned.id, []),
      backend.name === 'filesystem' ? [abandoned.id] : [`_uploads/${abandoned.id}/0`],
    );

    const active = await startUpload(registry.url, repo);
    let offset = 0;
    const sendNextChunk = async () => {
      const response = await patchChunk(active.location, blob.bytes.subarray(offset, offset + CHUNK), offset);
      t.is(response.status, 202, `chunk at ${offset} of the active upload: ${await response.text()}`);
      offset += CHUNK;
    };
    await sendNextChunk();

    // The active upload gets a chunk every 0.5 s (plus the PATCH's time), well within its age, for as long as the abandoned one takes to go and 3 s more.
    const deadline = Date.now() + 25_000;
    let goneAt: number | undefined;
    while (Date.now() < deadline && (goneAt === undefined || Date.now() - goneAt < 3_000) && offset < blob.bytes.length - CHUNK) {
      await sleep(500);
      await sendNextChunk();
      if (goneAt === undefined && (await backend.uploadLeftovers(registry, abandoned.id, [])).length === 0) goneAt = Date.now();
    }
    t.not(goneAt, undefined, 'the abandoned upload was never purged');
    await assertRegistryError(t, await fetchUrl(abandoned.location), 404, 'BLOB_UPLOAD_UNKNOWN');

    const rest = blob.bytes.subarray(offset);
    const finished = await fetchUrl(withDigest(active.location, blob.digest), {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${blob.bytes.length - 1}` },
      body: rest,
    });
    t.is(finished.status, 201, `the active upload could not be finished: ${await finished.text()}`);
    t.true(await backend.hasBlob(registry, blob.digest));
  });
}
