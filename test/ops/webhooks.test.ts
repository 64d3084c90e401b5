import { createHmac, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import test from 'ava';
import { eventually } from '../helpers/eventually.js';
import { pushImage, uniqueRepo } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const SECRET = 'test-webhook-secret';

let configDir: string;

test.before(async () => {
  configDir = await mkdtemp(path.join(tmpdir(), 'berth-webhooks-'));
});

test.after.always(async () => {
  await rm(configDir, { recursive: true, force: true });
});

/**
 * Starts a registry whose config has the given webhook endpoints and fast retries (and other `settings`), over
 * `dataDir` when given (a restart), else over a data directory of its own that its destroy() removes.
 */
async function registryWithEndpoints(
  endpoints: unknown[],
  dataDir?: string,
  settings: Record<string, unknown> = {},
): Promise<RegistryProcess> {
  const file = path.join(configDir, `${randomUUID()}.json`);
  await writeFile(
    file,
    JSON.stringify({ webhooks: { endpoints, maxAttempts: 1000, backoff: { initialMs: 50, maxMs: 300 }, ...settings } }),
  );
  return RegistryProcess.start({ dataDir, args: ['--config', file] });
}

test('a push is delivered as a Distribution envelope whose HMAC-SHA256 signature verifies', async (t) => {
  const receiver = new WebhookReceiver();
  await receiver.start();
  const registry = await registryWithEndpoints([
    { name: 'ci', url: receiver.url, secret: SECRET, actions: ['push'], headers: { 'X-Team': 'a' } },
  ]);
  try {
    const repo = uniqueRepo('hooks');
    const image = await pushImage(registry.url, repo, { tag: 'v1' });
    await receiver.waitFor(() => receiver.events().some((event) => event.target.digest === image.digest));
    const delivery = receiver.deliveries.find((candidate) => candidate.body.includes(`"tag":"v1"`))!;
    t.is(delivery.headers['content-type'], 'application/vnd.docker.distribution.events.v2+json');
    t.is(delivery.headers['x-team'], 'a');
    t.is(delivery.headers['x-berth-signature-256'], `sha256=${createHmac('sha256', SECRET).update(delivery.body).digest('hex')}`);
    const [event] = (
      JSON.parse(delivery.body) as {
        events: Array<{ action: string; target: unknown; request: { method: string; id: string }; source: { instanceID: string } }>;
      }
    ).events;
    t.is(event!.action, 'push');
    t.like(event!.target, {
      mediaType: image.mediaType,
      digest: image.digest,
      size: image.size,
      repository: repo,
      tag: 'v1',
      url: `${registry.url}/v2/${repo}/manifests/${image.digest}`,
    });
    t.is(event!.request.method, 'PUT');
    t.truthy(event!.request.id);
    t.truthy(event!.source.instanceID);
  } finally {
    await registry.destroy();
    await receiver.stop();
  }
});

test('events queued while the receiver is down arrive exactly once and in order, across a registry restart', async (t) => {
  const receiver = new WebhookReceiver();
  await receiver.start();
  await receiver.stop();
  const endpoint = { name: 'ordered', url: receiver.url, secret: SECRET, actions: ['push'] };
  const first = await registryWithEndpoints([endpoint]);
  let second: RegistryProcess | undefined;
  try {
    const repo = uniqueRepo('hooks');
    const tags = ['t1', 't2', 't3', 't4'];
    const digests: string[] = [];
    for (const tag of tags.slice(0, 2)) digests.push((await pushImage(first.url, repo, { tag })).digest);
    await first.stop();
    second = await registryWithEndpoints([endpoint], first.dataDir);
    for (const tag of tags.slice(2)) digests.push((await pushImage(second.url, repo, { tag })).digest);
    await receiver.start();

    const manifestEvents = () => receiver.events().filter((event) => event.target.tag !== undefined);
    await receiver.waitFor(() => manifestEvents().length >= tags.length);
    // Blob events sent after the last manifest event may still be on their way; wait for the queue to drain.
    await receiver.waitFor(() => receiver.events().length >= tags.length * 3);
    const ids = receiver.events().map((event) => event.id);
    t.is(new Set(ids).size, ids.length, 'no event arrived twice');
    t.deepEqual(
      manifestEvents().map((event) => event.target.tag),
      tags,
    );
    t.deepEqual(
      manifestEvents().map((event) => event.target.digest),
      digests,
    );
  } finally {
    await second?.destroy();
    await first.destroy();
    await receiver.stop();
  }
});

test('a push is not slowed by a webhook endpoint that never answers', async (t) => {
  // Accepts connections and never answers: every delivery hangs until its timeout.
  const blackHole: Server = createServer(() => undefined);
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  const port = (blackHole.address() as { port: number }).port;
  const silent = await registryWithEndpoints([{ name: 'void', url: `http://127.0.0.1:${port}/`, secret: SECRET, timeoutMs: 60_000 }]);
  const plain = await RegistryProcess.start();
  const timePushes = async (registry: RegistryProcess) => {
    const started = Date.now();
    for (let index = 0; index < 5; index += 1) await pushImage(registry.url, uniqueRepo('hooks'), { tag: 'v1', layers: 2 });
    return Date.now() - started;
  };
  try {
    await timePushes(plain);
    const withoutHooks = await timePushes(plain);
    const withBlackHole = await timePushes(silent);
    t.true(withBlackHole < 3 * withoutHooks + 1_000, `5 pushes took ${withBlackHole} ms with the black hole, ${withoutHooks} ms without`);
    t.true(withBlackHole < 5_000);
  } finally {
    await silent.destroy();
    await plain.destroy();
    blackHole.close();
  }
});

interface QueuedEvent {
  id: string;
  action: string;
  repository: string;
  body: string;
}

interface DeliveryLogEntry {
  eventId: string;
  attempt: number;
  outcome: string;
  status?: number;
}

test('an event refused N times is dead-lettered, shown with its attempts by the admin API, and redelivered on request', async (t) => {
  const maxAttempts = 3;
  const receiver = new WebhookReceiver();
  receiver.status = 503;
  await receiver.start();
  const registry = await registryWithEndpoints([{ name: 'flaky', url: receiver.url, secret: SECRET, actions: ['push'] }], undefined, {
    maxAttempts,
  });
  const admin = async <T>(route: string, method = 'GET'): Promise<{ status: number; body: T }> => {
    const response = await fetch(`${registry.url}/admin/v1/webhooks${route}`, { method });
    return { status: response.status, body: (await response.json()) as T };
  };
  const deadLetters = async () => (await admin<{ events: QueuedEvent[] }>('/flaky/dead-letters')).body.events;
  try {
    const repo = uniqueRepo('dead');
    const image = await pushImage(registry.url, repo, { tag: 'v1' });
    // The manifest is pushed last and events are delivered in order: once it is dead, so are the blob events.
    const isManifestEvent = (event: QueuedEvent) => event.body.includes(`"tag":"v1"`);
    const dead = await eventually(deadLetters, (events) => events.some(isManifestEvent));
    t.true(dead.every((event) => event.action === 'push' && event.repository === repo));
    const manifestEvent = dead.find(isManifestEvent)!;
    t.true(manifestEvent.body.includes(image.digest));

    const attemptsPerEvent = new Map<string, number>();
    for (const refused of receiver.refused) {
      const id = String(refused.headers['x-berth-event-id']);
      attemptsPerEvent.set(id, (attemptsPerEvent.get(id) ?? 0) + 1);
    }
    t.deepEqual([...attemptsPerEvent.keys()].sort(), dead.map((event) => event.id).sort());
    t.true(
      [...attemptsPerEvent.values()].every((attempts) => attempts === maxAttempts),
      JSON.stringify([...attemptsPerEvent]),
    );

    const log = async () => (await admin<{ deliveries: DeliveryLogEntry[] }>('/deliveries?endpoint=flaky')).body.deliveries;
    const manifestLog = (await log()).filter((entry) => entry.eventId === manifestEvent.id);
    t.deepEqual(
      manifestLog.map(({ attempt, outcome, status }) => ({ attempt, outcome, status })),
      [
        { attempt: 3, outcome: 'dead_lettered', status: 503 },
        { attempt: 3, outcome: 'failed', status: 503 },
        { attempt: 2, outcome: 'failed', status: 503 },
        { attempt: 1, outcome: 'failed', status: 503 },
      ],
      'newest first',
    );
    const endpoints = (await admin<{ endpoints: Array<{ name: string; queued: number }> }>('')).body.endpoints;
    t.deepEqual(
      endpoints.map(({ name, queued }) => ({ name, queued })),
      [{ name: 'flaky', queued: 0 }],
    );

    // The receiver is fixed: one dead letter is sent again, then the rest.
    receiver.status = 200;
    t.is((await admin('/flaky/dead-letters/no-such-event/redeliver', 'POST')).status, 404);
    t.is((await admin('/nowhere/dead-letters/redeliver', 'POST')).status, 404);
    t.deepEqual(await admin(`/flaky/dead-letters/${manifestEvent.id}/redeliver`, 'POST'), { status: 200, body: { requeued: 1 } });
    await receiver.waitFor(() => receiver.events().some((event) => event.id === manifestEvent.id));
    t.deepEqual(
      (await deadLetters()).map((event) => event.id).sort(),
      dead
        .filter((event) => event !== manifestEvent)
        .map((event) => event.id)
        .sort(),
    );

    t.deepEqual(await admin('/flaky/dead-letters/redeliver', 'POST'), { status: 200, body: { requeued: dead.length - 1 } });
    await receiver.waitFor(() => receiver.events().length >= dead.length);
    t.deepEqual(await deadLetters(), []);
    const received = receiver.events().map((event) => event.id);
    t.deepEqual([...received].sort(), dead.map((event) => event.id).sort(), 'each dead letter arrived exactly once');
    const delivered = await eventually(log, (entries) => entries.filter((entry) => entry.outcome === 'delivered').length === dead.length);
    t.true(delivered.filter((entry) => entry.outcome === 'delivered').every((entry) => entry.attempt === 1 && entry.status === 200));
  } finally {
    await registry.destroy();
    await receiver.stop();
  }
});
