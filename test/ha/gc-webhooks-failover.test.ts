import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../helpers/eventually.js';
import { pullProblems } from '../helpers/gc.js';
import { HaDeployment } from '../helpers/ha-deployment.js';
import { request } from '../helpers/http-client.js';
import { pushImage, uniqueRepo } from '../helpers/oci-content.js';
import { S3Server } from '../helpers/s3-server.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

// Two registry replicas under Sentinel with minReplicasAcked 1; one runs a slow collection when the primary
// is SIGKILLed, the other asks for one after the failover, and pushes go on throughout with a webhook endpoint.
const GRACE_SECONDS = 0.2;
const LOOP_LIMIT_MS = 60_000;
const COLLECT_TIMEOUT_MS = 90_000;
// Enough pushes to span the failover, few enough that the collections stay short: each kept blob costs the second
// a check (the pause follows only deletions; when it followed every batch, 60 pushes made it 12 s here, over 90 in CI).
const MAX_PUSHES = 60;

let s3: S3Server | undefined;
let receiver: WebhookReceiver | undefined;
let workDir: string | undefined;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-ha-gc-'));
  s3 = await S3Server.start();
  receiver = new WebhookReceiver();
  await receiver.start();
});

test.after.always(async () => {
  await receiver?.stop();
  await s3?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

interface Timed {
  status: number;
  body: string;
  sentAt: number;
  answeredAt: number;
}

/** POST /admin/v1/gc; status 0 when no answer came (the request timed out). */
async function collect(baseUrl: string): Promise<Timed> {
  const sentAt = Date.now();
  try {
    // A collection answers when it ends: on a loaded machine, after a failover, that took over the helpers' 30 s.
    const response = await request(baseUrl, '/admin/v1/gc', { method: 'POST', signal: AbortSignal.timeout(COLLECT_TIMEOUT_MS) });
    return { status: response.status, body: await response.text(), sentAt, answeredAt: Date.now() };
  } catch (error) {
    return { status: 0, body: String(error), sentAt, answeredAt: Date.now() };
  }
}

test('across a failover two collections never run at once, and every acknowledged push has its webhook event delivered', async (t) => {
  const config = path.join(workDir!, 'berth.json');
  await writeFile(
    config,
    JSON.stringify({
      webhooks: {
        endpoints: [{ name: 'ci', url: receiver!.url, secret: 'webhook-secret', actions: ['push'] }],
        maxAttempts: 1000,
        backoff: { initialMs: 50, maxMs: 300 },
      },
      // One deletion per batch with a pause: the collection lasts seconds, long enough to fail over under it.
      gc: { adminApi: true, graceSeconds: GRACE_SECONDS, batchSize: 1, batchPauseMs: 100 },
    }),
  );
  const deployment = await HaDeployment.start(s3!, {
    replicas: 2,
    redisReplicas: 2,
    minReplicasAcked: 1,
    s3Prefix: `ha-gc-${Date.now()}`,
    args: ['--config', config],
  });
  try {
    const [first, second] = deployment.registries as [(typeof deployment.registries)[0], (typeof deployment.registries)[0]];
    const repository = uniqueRepo('hagc');
    await pushImage(first.url, repository, { tag: 'kept', layers: 2 });
    for (let index = 0; index < 6; index++) {
      const garbage = await pushImage(first.url, repository, { tag: `garbage-${index}` });
      t.is((await request(first.url, `/v2/${repository}/manifests/garbage-${index}`, { method: 'DELETE' })).status, 202);
      t.is((await request(first.url, `/v2/${repository}/manifests/${garbage.digest}`, { method: 'DELETE' })).status, 202);
    }
    await sleep(GRACE_SECONDS * 1000 + 200);

    const acknowledged: string[] = [];
    let stopPushing = false;
    const pushes = (async () => {
      const deadline = Date.now() + LOOP_LIMIT_MS;
      for (let index = 0; index < MAX_PUSHES && !stopPushing && Date.now() < deadline; index++) {
        const image = await pushImage(second.url, repository, { tag: `during-${index}` }).catch(() => undefined);
        if (image) acknowledged.push(image.digest);
        else await sleep(200);
      }
    })();

    const firstRun = collect(first.url);
    await sleep(500);
    const killedAt = Date.now();
    await deployment.redis.killPrimary();
    await deployment.redis.waitForPromotion();

    // The other replica asks for a collection until it gets one (409 while the first holds the lease).
    const secondRuns: Timed[] = [];
    const deadline = Date.now() + LOOP_LIMIT_MS;
    while (Date.now() < deadline) {
      const run = await collect(second.url);
      secondRuns.push(run);
      if (run.status === 200) break;
      await sleep(250);
    }
    const firstOutcome = await firstRun;
    const acknowledgedBeforeStop = acknowledged.length;
    stopPushing = true;
    await pushes;
    const secondOutcome = secondRuns.at(-1)!;

    // The first collection's end, from its registry's log (its client may have given up waiting for the answer).
    const firstEnd = await eventually(
      async () => /"time":"([^"]+)"[^\n]*"msg":"(garbage collection finished|request failed)"/.exec(first.logs)?.[1],
      (time) => time !== undefined,
      60_000,
    );
    t.is(secondOutcome.status, 200, secondOutcome.body);
    const secondReport = JSON.parse(secondOutcome.body) as { startedAt: string };
    t.log(
      `first collection answered ${firstOutcome.status} ${firstOutcome.answeredAt - killedAt} ms after the kill, ended ${Date.parse(firstEnd!) - killedAt} ms after it; ` +
        `second: ${secondRuns.length - 1} refusals then ${secondOutcome.status} ${secondOutcome.body}; ${acknowledged.length} pushes acknowledged during the test`,
    );
    t.true([0, 200, 503].includes(firstOutcome.status), firstOutcome.body);
    t.true(secondRuns.slice(0, -1).every((run) => run.status === 409 || run.status === 503));
    // No double run: the second collection began (it had the lease) only after the first one ended.
    t.true(Date.parse(secondReport.startedAt) >= Date.parse(firstEnd!), 'two collections overlapped');
    t.deepEqual(await pullProblems(first.url, repository, 'kept'), []);

    t.true(acknowledgedBeforeStop > 0);
    await receiver!.waitFor(
      () => acknowledged.every((digest) => receiver!.events().some((event) => event.target.digest === digest)),
      30_000,
    );
    t.pass('every acknowledged push was delivered');
    t.notRegex(deployment.logs, /"status":500\b/);
  } finally {
    await deployment.stop();
  }
});
