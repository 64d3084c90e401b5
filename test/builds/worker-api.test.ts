import test from 'ava';
import { AuthRegistry } from '../helpers/auth-registry.js';
import { eventually } from '../helpers/eventually.js';
import { scrapeMetrics, total } from '../helpers/prometheus.js';
import { assertRegistryError, request } from '../helpers/http-client.js';

/**
 * The build workers' API on a registry with auth on (3 s leases), driven as a worker would, without an agent:
 * a job's token (POST /builds/v1/worker/jobs/:id/push-token) pulls and pushes the job's repository and its
 * project's cache repository and nothing else; a job whose worker is gone goes back to the queue by itself.
 */

const LEASE_SECONDS = 3;

let registry: AuthRegistry;
let workerToken: string;

test.before(async () => {
  registry = await AuthRegistry.start({ env: { BERTH_BUILDS__LEASE_SECONDS: String(LEASE_SECONDS) } });
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
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

/** Starts an upload in the repository with the token: 202 when the token may push there. */
function startUpload(repository: string, token: string): Promise<Response> {
  return request(registry.url, `/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
}

async function createProject(name: string, cacheRepository: string | null): Promise<void> {
  await registry.admin('POST', `/builds/projects/${name}`, {
    repository: `team/${name}`,
    git: { url: `http://127.0.0.1:9/${name}.git` },
    webhookSecret: 'a-webhook-secret-of-enough-length',
    cacheRepository,
  });
}

interface Job {
  id: string;
  attempt: number;
  project: string;
  cache: { repository: string; from: string[]; to: string } | null;
}

test.serial('a job token pushes to the job and cache repositories and is refused 401 UNAUTHORIZED for any other', async (t) => {
  await createProject('scoped', 'team/scoped-cache');
  await registry.admin('POST', '/builds/projects/scoped/builds', { ref: 'main' });
  const job = await worker<Job>('/claim', { waitSeconds: 5 });
  t.deepEqual(job.cache, { repository: 'team/scoped-cache', from: ['branch-main'], to: 'branch-main' });
  // The lease is held as a worker holds it while the token is used.
  const renewal = setInterval(() => void worker(`/jobs/${job.id}/lease`, { attempt: job.attempt }).catch(() => undefined), 500);
  t.teardown(() => clearInterval(renewal));
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
  await worker(`/jobs/${job.id}/finish`, { attempt: job.attempt, outcome: 'failed', error: 'test over' });
});

test.serial("a branch's job imports its own cache tag, then the default branch's, and exports its own", async (t) => {
  await registry.admin('POST', '/builds/projects/branches', {
    repository: 'team/branches',
    git: { url: 'http://127.0.0.1:9/branches.git', defaultBranch: 'trunk' },
    webhookSecret: 'a-webhook-secret-of-enough-length',
    rules: [{ sourceType: 'branch', source: '/.*/', tag: '{sourceref}' }],
    cacheRepository: 'team/branches-cache',
  });
  for (const [ref, from] of [
    ['feature/login', ['branch-feature-login', 'branch-trunk']],
    ['trunk', ['branch-trunk']],
  ] as const) {
    await registry.admin('POST', '/builds/projects/branches/builds', { ref });
    const job = await worker<Job>('/claim', { waitSeconds: 5 });
    t.deepEqual(job.cache, { repository: 'team/branches-cache', from, to: from[0] }, ref);
    await worker(`/jobs/${job.id}/finish`, { attempt: job.attempt, outcome: 'failed', error: 'test over' });
  }
});

/** A claim as a worker's agent (a1 unless named) sends it; the answer's status and job (204: none). */
async function claim(waitSeconds: number, signal?: AbortSignal, agent = 'a1'): Promise<{ status: number; job: Job | undefined }> {
  const response = await request(registry.url, '/builds/v1/worker/claim', {
    method: 'POST',
    headers: { Authorization: `Bearer ${workerToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ agent, waitSeconds }),
    signal: signal ?? AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  return { status: response.status, job: text === '' ? undefined : (JSON.parse(text) as Job) };
}

test.serial(
  'a claim with nothing queued waits out its waitSeconds before answering 204, and takes a job queued while it waits',
  async (t) => {
    const started = Date.now();
    t.like(await claim(2), { status: 204, job: undefined });
    // A lower bound only: an idle worker must not be answered at once and ask again in a loop.
    t.true(Date.now() - started >= 1_900, `answered after ${Date.now() - started} ms`);

    await createProject('waiting', null);
    const waiting = claim(30);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const [id] = (await registry.admin<{ builds: string[] }>('POST', '/builds/projects/waiting/builds', { ref: 'main' })).builds;
    const answer = await waiting;
    t.is(answer.status, 200);
    t.like(answer.job, { id, attempt: 1, project: 'waiting' });
    await worker(`/jobs/${id}/finish`, { attempt: 1, outcome: 'failed', error: 'test over' });
  },
);

test.serial('a claim whose worker hung up takes no job: the next claim gets it on its first attempt', async (t) => {
  await createProject('hung-up', null);
  const hangUp = new AbortController();
  const abandoned = claim(30, hangUp.signal).catch((error: unknown) => error);
  await new Promise((resolve) => setTimeout(resolve, 500));
  hangUp.abort();
  await abandoned;
  // Long enough for the registry to see the closed connection.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const [id] = (await registry.admin<{ builds: string[] }>('POST', '/builds/projects/hung-up/builds', { ref: 'main' })).builds;
  const answer = await claim(10);
  t.like(answer.job, { id, attempt: 1 });
  t.like(await registry.admin<{ state: string; attempt: number }>('GET', `/builds/${id}`), { state: 'running', attempt: 1 });
  await worker(`/jobs/${id}/finish`, { attempt: 1, outcome: 'failed', error: 'test over' });
});

test.serial(
  "the finish call carries the log's last lines: they follow the lines sent before; a finish of a lost lease adds none",
  async (t) => {
    await createProject('last-lines', null);
    const [id] = (await registry.admin<{ builds: string[] }>('POST', '/builds/projects/last-lines/builds', { ref: 'main' })).builds;
    const job = (await claim(10)).job!;
    t.like(job, { id, attempt: 1 });
    await worker(`/jobs/${job.id}/log`, { attempt: 1, lines: ['#1 step one'] });
    const stale = await request(registry.url, `/builds/v1/worker/jobs/${job.id}/finish`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${workerToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent: 'a1', attempt: 2, outcome: 'succeeded', log: ['from a lost lease'] }),
    });
    t.is(stale.status, 409);
    t.like(
      await worker(`/jobs/${job.id}/finish`, {
        attempt: 1,
        outcome: 'failed',
        error: 'test over',
        log: ['#2 step two', 'ERROR: test over'],
      }),
      {
        state: 'failed',
      },
    );
    const { lines } = await registry.admin<{ lines: string[] }>('GET', `/builds/${job.id}/logs`);
    t.deepEqual(lines, ['#1 step one', '#2 step two', 'ERROR: test over']);
  },
);

/** Waits until the registry counts `count` workers asking for work (berth_build_workers_waiting). */
async function workersWaiting(count: number): Promise<void> {
  await eventually(
    async () => total(await scrapeMetrics(registry.url), 'berth_build_workers_waiting'),
    (waiting) => waiting === count,
  );
}

test.serial(
  "a project's new job goes to the agent that built the project last while it asks for work, and to another agent when it does not",
  async (t) => {
    await createProject('affinity', null);
    const queue = async () =>
      (await registry.admin<{ builds: string[] }>('POST', '/builds/projects/affinity/builds', { ref: 'main' })).builds[0];
    const finish = (id: string | undefined, agent: string) =>
      worker(`/jobs/${id}/finish`, { agent, attempt: 1, outcome: 'failed', error: 'test over' });
    const first = await queue();
    t.like((await claim(10, undefined, 'builder')).job, { id: first });
    await finish(first, 'builder');

    // The other agent asks first and longer; the builder's wait is open too when the job comes.
    const other = claim(4, undefined, 'other');
    await workersWaiting(1);
    const builder = claim(20, undefined, 'builder');
    await workersWaiting(2);
    const second = await queue();
    t.like(await builder, { status: 200, job: { id: second } });
    // Ended before its lease (3 s) runs out: an expired lease would put the job back for the other agent.
    await finish(second, 'builder');
    t.like(await other, { status: 204, job: undefined });

    // The builder is not asking now: the job is not kept for it.
    const third = await queue();
    t.like(await claim(10, undefined, 'other'), { status: 200, job: { id: third } });
    await finish(third, 'other');
  },
);

test.serial('a job whose worker stops renewing its lease is queued again by the registry, before any worker asks for work', async (t) => {
  await createProject('abandoned', null);
  const [id] = (await registry.admin<{ builds: string[] }>('POST', '/builds/projects/abandoned/builds', { ref: 'main' })).builds;
  const job = await worker<Job>('/claim', { waitSeconds: 5 });
  t.like(job, { id, attempt: 1 });
  const claimed = await registry.admin<{ state: string; worker: string }>('GET', `/builds/${id}`);
  t.is(claimed.state, 'running');
  t.regex(claimed.worker, /^a1@/);
  const started = Date.now();
  const requeued = await eventually(
    () => registry.admin<{ state: string; worker: string; attempt: number }>('GET', `/builds/${id}`),
    (record) => record.state !== 'running',
    (LEASE_SECONDS + 10) * 1000,
  );
  t.like(requeued, { state: 'queued', worker: '', attempt: 1 });
  t.true(Date.now() - started < (LEASE_SECONDS + 3) * 1000, `requeued ${Date.now() - started} ms after the claim`);
  const lost = await request(registry.url, `/builds/v1/worker/jobs/${id}/lease`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${workerToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ agent: 'a1', attempt: 1 }),
  });
  t.is(lost.status, 409, 'the gone worker no longer holds it');
  t.like(await worker<Job>('/claim', { waitSeconds: 5 }), { id, attempt: 2 });
});

test.serial('a stopping registry answers a waiting claim 204 at once, instead of holding its stop until the long-poll ends', async (t) => {
  const stopping = await AuthRegistry.start({
    env: { BERTH_BUILDS__CLAIM_WAIT_SECONDS: '60', BERTH_HTTP__DRAIN_TIMEOUT_SECONDS: '60' },
  });
  t.teardown(() => stopping.process.destroy());
  const { token } = await stopping.admin<{ token: string }>('POST', '/build-workers/tokens', { name: 'stopping' });
  const answer = request(stopping.url, '/builds/v1/worker/claim', {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ agent: 'a1', waitSeconds: 60 }),
    signal: AbortSignal.timeout(120_000),
  });
  await eventually(
    async () => total(await scrapeMetrics(stopping.url), 'berth_build_workers_waiting'),
    (waiting) => waiting === 1,
  );
  const stopped = Date.now();
  const stop = stopping.process.stop();
  t.is((await answer).status, 204);
  // Far below the 60 s long-poll (and drain) a registry that did not answer its claims would wait out.
  t.true(Date.now() - stopped < 30_000, `answered ${Date.now() - stopped} ms after the stop began`);
  // The answered claim's keep-alive connection does not hold the drain open either.
  await stop;
  t.true(Date.now() - stopped < 30_000, `stopped ${Date.now() - stopped} ms after the stop began`);
});
