import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { collectWithCli, gcEnv, pullProblems } from '../helpers/gc.js';
import { request } from '../helpers/http-client.js';
import { pushImage, uniqueRepo } from '../helpers/oci-content.js';
import { filesystemBackend } from '../helpers/storage-backends.js';

const GRACE_SECONDS = 0.2;
const PAUSE_MS = 500;
const KEPT_LAYERS = 30;
// One candidate per batch and no rest in proportion to the work: the pauses alone set the run's length.
const PACED = gcEnv(GRACE_SECONDS, { BERTH_GC__BATCH_SIZE: '1', BERTH_GC__BATCH_PAUSE_MS: String(PAUSE_MS), BERTH_GC__REST_RATIO: '0' });

test('a collection pauses after each batch that deleted something, not after each stored blob it checked and kept', async (t) => {
  const backend = filesystemBackend();
  const registry = await backend.startRegistry({ env: gcEnv(GRACE_SECONDS) });
  try {
    const repo = uniqueRepo('gc');
    await pushImage(registry.url, repo, { tag: 'kept', layers: KEPT_LAYERS });
    const doomed = await pushImage(registry.url, repo, { layers: 1 });
    t.is((await request(registry.url, `/v2/${repo}/manifests/${doomed.digest}`, { method: 'DELETE' })).status, 202);
    await sleep(GRACE_SECONDS * 1000 + 200);

    const run = await collectWithCli(registry, [], PACED);

    t.is(run.code, 0, run.stderr);
    t.is(run.report!.blobsDeleted, 2, 'the deleted image config and layer');
    // Both blob deletions paused; a pause per kept blob (the orphan sweep checks every stored one) would be 31 more.
    t.true(run.report!.durationMs >= 2 * PAUSE_MS, `took ${run.report!.durationMs} ms`);
    t.true(run.report!.durationMs < KEPT_LAYERS * PAUSE_MS, `took ${run.report!.durationMs} ms`);
    t.deepEqual(await pullProblems(registry.url, repo, 'kept'), []);
  } finally {
    await registry.destroy();
    await backend.stop();
  }
});
