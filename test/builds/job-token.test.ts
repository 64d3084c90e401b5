import test from 'ava';
import { AuthRegistry } from '../helpers/auth-registry.js';
import { assertRegistryError, request } from '../helpers/http-client.js';

/**
 * A build job's token (POST /builds/v1/worker/jobs/:id/push-token) on a registry with auth on: it pulls and
 * pushes the job's repository and its project's cache repository, and reaches no other repository.
 */

let registry: AuthRegistry;
let workerToken: string;

test.before(async () => {
  registry = await AuthRegistry.start();
  workerToken = (await registry.admin<{ token: string }>('POST', '/build-workers/tokens', { name: 'ci' })).token;
});

test.after.always(async () => {
  await registry?.process.destroy();
});

async function worker<T>(path: string, body: object): Promise<T> {
  const response = await request(registry.url, `/builds/v1/worker${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${workerToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ agent: 'a1', ...body }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

/** Starts an upload in the repository with the token: 202 when the token may push there. */
function startUpload(repository: string, token: string): Promise<Response> {
  return request(registry.url, `/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
}

test('a job token pushes to the job and cache repositories and is refused 401 UNAUTHORIZED for any other', async (t) => {
  await registry.admin('POST', '/builds/projects/scoped', {
    repository: 'team/scoped',
    git: { url: 'http://127.0.0.1:9/scoped.git' },
    webhookSecret: 'a-webhook-secret-of-enough-length',
    cacheRepository: 'team/scoped-cache',
  });
  await registry.admin('POST', '/builds/projects/scoped/builds', { ref: 'main' });
  const job = await worker<{ id: string; attempt: number; cacheRepository: string }>('/claim', { waitSeconds: 5 });
  t.is(job.cacheRepository, 'team/scoped-cache');
  const { token } = await worker<{ token: string }>(`/jobs/${job.id}/push-token`, { attempt: job.attempt });

  for (const repository of ['team/scoped', 'team/scoped-cache']) {
    const started = await startUpload(repository, token);
    await started.body?.cancel();
    t.is(started.status, 202, `push to ${repository}`);
  }
  for (const repository of ['team/other', 'team/scoped-cache-2', 'library/busybox']) {
    await assertRegistryError(t, await startUpload(repository, token), 401, 'UNAUTHORIZED');
    const pulled = await request(registry.url, `/v2/${repository}/manifests/latest`, { headers: { Authorization: `Bearer ${token}` } });
    await assertRegistryError(t, pulled, 401, 'UNAUTHORIZED');
  }
});
