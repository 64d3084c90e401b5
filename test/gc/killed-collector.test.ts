import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../helpers/eventually.js';
import { collectWithCli, gcEnv, pullProblems } from '../helpers/gc.js';
import { request } from '../helpers/http-client.js';
import { pushImage, uniqueRepo, type Blob } from '../helpers/oci-content.js';
import { filesystemBackend } from '../helpers/storage-backends.js';

const CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));
const GRACE_SECONDS = 0.2;
// One deletion per batch with a pause between: the sweep takes seconds, long enough to kill it midway.
const SLOW_SWEEP = gcEnv(GRACE_SECONDS, { BERTH_GC__BATCH_SIZE: '1', BERTH_GC__BATCH_PAUSE_MS: '100' });
const LEASE_EXPIRY_MS = 15_000;

test('a collector killed with SIGKILL mid-sweep leaves every visible blob readable, and the next run finishes the job', async (t) => {
  const backend = filesystemBackend();
  const registry = await backend.startRegistry({ env: gcEnv(GRACE_SECONDS) });
  try {
    const repo = uniqueRepo('gc');
    await pushImage(registry.url, repo, { tag: 'kept', layers: 2 });
    const garbage: Blob[] = [];
    for (let index = 0; index < 15; index++) {
      const image = await pushImage(registry.url, repo, { layers: 1 });
      garbage.push(image.config, ...image.layers);
      await request(registry.url, `/v2/${repo}/manifests/${image.digest}`, { method: 'DELETE' });
    }
    await sleep(GRACE_SECONDS * 1000 + 200);

    const collector = spawn(process.execPath, [CLI, 'gc', '--data-dir', registry.dataDir], {
      env: { ...process.env, ...SLOW_SWEEP },
      stdio: 'ignore',
    });
    const stored = async () => (await Promise.all(garbage.map((blob) => backend.hasBlob(registry, blob.digest)))).filter(Boolean).length;
    await eventually(stored, (left) => left <= garbage.length - 4, 60_000);
    collector.kill('SIGKILL');
    await new Promise((resolve) => collector.once('exit', resolve));
    const left = await stored();
    t.true(left > 0 && left < garbage.length, `killed after deleting ${garbage.length - left} of ${garbage.length} blobs`);

    // Consistent: a blob the registry still answers for has its bytes; the others are simply unknown.
    for (const blob of garbage) {
      const head = await request(registry.url, `/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' });
      if (head.status === 200) t.true(await backend.hasBlob(registry, blob.digest), `${blob.digest} is served but its bytes are gone`);
    }
    t.deepEqual(await pullProblems(registry.url, repo, 'kept'), []);

    // The dead collector's lease blocks the next run until it expires.
    const deadline = Date.now() + LEASE_EXPIRY_MS;
    let rerun = await collectWithCli(registry, [], gcEnv(GRACE_SECONDS));
    while (rerun.code === 3 && Date.now() < deadline) {
      await sleep(500);
      rerun = await collectWithCli(registry, [], gcEnv(GRACE_SECONDS));
    }
    t.is(rerun.code, 0, rerun.stderr);
    // Plus the one blob whose bytes may have gone just before the kill, with its tombstone still standing.
    t.true(
      rerun.report !== undefined && rerun.report.blobsDeleted >= left && rerun.report.blobsDeleted <= left + 1,
      'the next run deleted what the killed one left',
    );
    t.is(await stored(), 0);
    t.deepEqual(await pullProblems(registry.url, repo, 'kept'), []);
  } finally {
    await registry.destroy();
  }
});
