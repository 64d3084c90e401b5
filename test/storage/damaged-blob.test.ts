import { truncate } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { makeBlob, pushBlob, uniqueRepo } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';

test('a blob file damaged on disk makes the GET fail fast instead of hanging on the promised length', async (t) => {
  const registry = await RegistryProcess.start();
  t.teardown(() => registry.destroy());
  const repository = uniqueRepo('damaged');
  const blob = await pushBlob(registry.url, repository, makeBlob(256 * 1024));
  const hex = blob.digest.slice('sha256:'.length);
  await truncate(path.join(registry.dataDir, 'storage', 'blobs', 'sha256', hex.slice(0, 2), hex), 1000);

  const response = await fetch(`${registry.url}/v2/${repository}/blobs/${blob.digest}`, { signal: AbortSignal.timeout(10_000) });
  t.is(response.status, 200);
  t.is(response.headers.get('content-length'), String(blob.size));
  const error = await t.throwsAsync(response.arrayBuffer());
  t.notRegex(String(error?.name), /TimeoutError|AbortError/, 'the body should fail because the server closed the connection');
  // The log line is written as the connection closes, a moment after the client sees it.
  const deadline = Date.now() + 5_000;
  while (!registry.logs.includes('response body failed') && Date.now() < deadline) await sleep(50);
  t.regex(registry.logs, /response body failed; closing the connection/);
});
