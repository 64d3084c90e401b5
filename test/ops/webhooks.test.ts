import { createHmac } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import test from 'ava';
import { pushImage, uniqueRepo } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const SECRET = 'test-webhook-secret';

/** Starts a registry whose config has the given webhook endpoints and fast retries. */
async function registryWithEndpoints(endpoints: unknown[], dataDir?: string): Promise<RegistryProcess> {
  const registry = await RegistryProcess.start({ dataDir });
  const file = path.join(registry.dataDir, 'webhooks.json');
  await registry.stop();
  await writeFile(file, JSON.stringify({ webhooks: { endpoints, maxAttempts: 1000, backoff: { initialMs: 50, maxMs: 300 } } }));
  return RegistryProcess.start({ dataDir: registry.dataDir, args: ['--config', file] });
}

test('a push is delivered as a Distribution envelope whose HMAC-SHA256 signature verifies', async (t) => {
  const receiver = new WebhookReceiver();
  await receiver.start();
  const registry = await registryWithEndpoints([{ name: 'ci', url: receiver.url, secret: SECRET, actions: ['push'], headers: { 'X-Team': 'a' } }]);
  try {
    const repo = uniqueRepo('hooks');
    const image = await pushImage(registry.url, repo, { tag: 'v1' });
    await receiver.waitFor(() => receiver.events().some((event) => event.target.digest === image.digest));
    const delivery = receiver.deliveries.find((candidate) => candidate.body.includes(`"tag":"v1"`))!;
    t.is(delivery.headers['content-type'], 'application/vnd.docker.distribution.events.v2+json');
    t.is(delivery.headers['x-team'], 'a');
    t.is(delivery.headers['x-berth-signature-256'], `sha256=${createHmac('sha256', SECRET).update(delivery.body).digest('hex')}`);
    const [event] = (JSON.parse(delivery.body) as { events: Array<Record<string, any>> }).events;
    t.is(event!.action, 'push');
    t.like(event!.target, { mediaType: image.mediaType, digest: image.digest, size: image.size, repository: repo, tag: 'v1', url: `${registry.url}/v2/${repo}/manifests/${image.digest}` });
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
    t.deepEqual(manifestEvents().map((event) => event.target.tag), tags);
    t.deepEqual(manifestEvents().map((event) => event.target.digest), digests);
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
