import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { request } from '../helpers/http-client.js';
import { pushImage, uniqueRepo } from '../helpers/oci-content.js';
import { filesystemBackend } from '../helpers/storage-backends.js';

test('with gc.intervalSeconds set, the registry collects a deleted image by itself and counts the runs in /metrics', async (t) => {
  const backend = filesystemBackend();
  const registry = await backend.startRegistry({ env: { BERTH_GC__INTERVAL_SECONDS: '1', BERTH_GC__GRACE_SECONDS: '0.2' } });
  t.teardown(async () => {
    await registry.destroy();
    await backend.stop();
  });
  const repo = uniqueRepo('scheduled');
  const image = await pushImage(registry.url, repo, { tag: 'gone', layers: 1 });
  t.is((await request(registry.url, `/v2/${repo}/manifests/${image.digest}`, { method: 'DELETE' })).status, 202);

  const layer = image.layers[0]!.digest;
  const deadline = Date.now() + 15_000;
  while ((await backend.hasBlob(registry, layer)) && Date.now() < deadline) await sleep(200);
  t.false(await backend.hasBlob(registry, layer), 'the scheduled collector never removed the deleted image layer');
  // The run that removed the layer is counted when it ends, after its later phases (records, orphans, uploads).
  let gcLines: string;
  const countedBy = Date.now() + 10_000;
  do {
    const metrics = await (await request(registry.url, '/metrics')).text();
    gcLines = metrics
      .split('\n')
      .filter((line) => line.startsWith('berth_gc'))
      .join('\n');
    if (sweepRuns(metrics) >= 1) break;
    await sleep(200);
  } while (Date.now() < countedBy);
  t.true(sweepRuns(gcLines) >= 1, gcLines);
});

function sweepRuns(metrics: string): number {
  return Number(/^berth_gc_runs_total\{mode="sweep"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
}
