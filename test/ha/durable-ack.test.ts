import test from 'ava';
import { RegistryKeys } from '../../server/metadata/keys.js';
import { eventually } from '../helpers/eventually.js';
import { assertRegistryError, request } from '../helpers/http-client.js';
import { imageManifest, makeBlob, postBlob, pushBlob, putManifest, uniqueRepo } from '../helpers/oci-content.js';
import { RedisServer } from '../helpers/redis-server.js';
import { RegistryProcess } from '../helpers/registry-process.js';

// A real primary and replica (redis-server --replicaof): durable acknowledgement waits for the replica, and a
// registry on a server that is (or became) a replica answers 503, never 500.
const ACK_TIMEOUT_MS = 500;
const keys = new RegistryKeys('berth:');

let primary: RedisServer | undefined;
let replica: RedisServer | undefined;
const registries: RegistryProcess[] = [];

test.before(async () => {
  primary = await RedisServer.start();
  replica = await RedisServer.start(['--replicaof', '127.0.0.1', String(primary.port)]);
  const client = replica.client();
  try {
    await eventually(
      () => client.info('replication'),
      (info) => /master_link_status:up/.test(info),
      10_000,
    );
  } finally {
    client.disconnect();
  }
});

test.after.always(async () => {
  await Promise.allSettled(registries.map((registry) => registry.destroy()));
  await Promise.allSettled([replica?.stop(), primary?.stop()]);
});

async function registryOn(url: string, minReplicasAcked: number): Promise<RegistryProcess> {
  const registry = await RegistryProcess.start({
    env: {
      BERTH_REDIS__URL: url,
      BERTH_REDIS__MIN_REPLICAS_ACKED: String(minReplicasAcked),
      BERTH_REDIS__ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
    },
  });
  registries.push(registry);
  return registry;
}

/** An image whose blobs are pushed, ready for its manifest PUT. */
async function imageToPut(baseUrl: string, repository: string): Promise<ReturnType<typeof imageManifest> & { configDigest: string }> {
  const config = makeBlob(64);
  const layer = makeBlob(256);
  for (const blob of [config, layer]) await pushBlob(baseUrl, repository, blob);
  return { ...imageManifest({ config, layers: [layer] }), configDigest: config.digest };
}

test.serial('with minReplicasAcked 1 a manifest PUT is answered 201 only once the replica holds it', async (t) => {
  const registry = await registryOn(primary!.url, 1);
  const repository = uniqueRepo('durable');
  const manifest = await imageToPut(registry.url, repository);
  const response = await putManifest(registry.url, repository, 'v1', manifest);
  t.is(response.status, 201, await response.text());
  const client = replica!.client();
  try {
    // Read from the replica right after the 201, with no waiting: WAIT already confirmed it has the write.
    t.is(await client.exists(keys.manifest(manifest.digest)), 1);
    t.is(await client.hget(keys.repoTagMap(repository), 'v1'), manifest.digest);
  } finally {
    client.disconnect();
  }
});

test.serial(
  'with minReplicasAcked 1 and the replica stalled, writes get 503 UNAVAILABLE with Retry-After, and succeed once it is back',
  async (t) => {
    const registry = await registryOn(primary!.url, 1);
    const repository = uniqueRepo('durable');
    const manifest = await imageToPut(registry.url, repository);
    replica!.pause(true);
    try {
      const startedAt = Date.now();
      const refused = await putManifest(registry.url, repository, 'v1', manifest);
      t.true(Date.now() - startedAt >= ACK_TIMEOUT_MS, 'answered before the acknowledgement timeout');
      t.is(refused.headers.get('retry-after'), '1');
      const error = await assertRegistryError(t, refused, 503, 'UNAVAILABLE');
      t.regex(error.message ?? '', /replicas/);
      await assertRegistryError(t, await postBlob(registry.url, repository, makeBlob(32)), 503, 'UNAVAILABLE');
      // Pulls go on: reads need no replica.
      t.is((await request(registry.url, `/v2/${repository}/blobs/${manifest.configDigest}`)).status, 200);
    } finally {
      replica!.pause(false);
    }
    const retried = await putManifest(registry.url, repository, 'v1', manifest);
    t.is(retried.status, 201, await retried.text());
    t.is((await request(registry.url, `/v2/${repository}/manifests/v1`)).status, 200);
  },
);

test.serial('without minReplicasAcked a write is acknowledged while the replica is stalled (what the option prevents)', async (t) => {
  const registry = await registryOn(primary!.url, 0);
  const repository = uniqueRepo('async');
  const manifest = await imageToPut(registry.url, repository);
  replica!.pause(true);
  try {
    const response = await putManifest(registry.url, repository, 'v1', manifest);
    t.is(response.status, 201, await response.text());
  } finally {
    replica!.pause(false);
  }
});

test.serial(
  'a registry whose Redis is a replica (a demoted primary) answers writes 503 with Retry-After, never 500, and is not ready',
  async (t) => {
    const registry = await registryOn(replica!.url, 0);
    const repository = uniqueRepo('demoted');
    const refused = await postBlob(registry.url, repository, makeBlob(32));
    t.is(refused.headers.get('retry-after'), '1');
    await assertRegistryError(t, refused, 503, 'UNAVAILABLE');
    const ready = await request(registry.url, '/readyz');
    t.is(ready.status, 503);
    t.regex(await ready.text(), /replica, not the primary/);
    t.notRegex(registry.logs, /"status":500/);
  },
);
