import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../server/config.js';
import { redisOptions } from '../../server/redis/connect.js';

const DEPLOY_HA = fileURLToPath(new URL('../../../deploy/ha/', import.meta.url));

test('redis.sentinel from the environment: a comma-separated list of host:port, the master name and passwords', (t) => {
  const config = loadConfig({
    env: {
      BERTH_REDIS__SENTINEL__SENTINELS: '10.0.0.1:26379, 10.0.0.2:26380,[::1]:26381',
      BERTH_REDIS__SENTINEL__MASTER_NAME: 'registry',
      BERTH_REDIS__SENTINEL__PASSWORD: 'primary-secret',
      BERTH_REDIS__SENTINEL__SENTINEL_PASSWORD: 'sentinel-secret',
      BERTH_REDIS__MIN_REPLICAS_ACKED: '1',
    },
  });
  const options = redisOptions({ config: config.redis });
  t.deepEqual(options.sentinels, [
    { host: '10.0.0.1', port: 26379 },
    { host: '10.0.0.2', port: 26380 },
    { host: '::1', port: 26381 },
  ]);
  t.is(options.name, 'registry');
  t.is(options.role, 'master');
  t.is(options.password, 'primary-secret');
  t.is(options.sentinelPassword, 'sentinel-secret');
  t.is(config.redis.minReplicasAcked, 1);
});

test('contradictory or unusable Redis settings are refused at start with a message naming them', (t) => {
  const both = t.throws(() => loadConfig({ env: { BERTH_REDIS__URL: 'redis://a:6379', BERTH_REDIS__SENTINEL__SENTINELS: 'b:26379' } }));
  t.regex(both.message, /either redis\.url .* or redis\.sentinel/);
  const embedded = t.throws(() => loadConfig({ env: { BERTH_REDIS__MIN_REPLICAS_ACKED: '1' } }));
  t.regex(embedded.message, /minReplicasAcked needs replicas/);
  const address = t.throws(() => loadConfig({ env: { BERTH_REDIS__SENTINEL__SENTINELS: 'no-port' } }));
  t.regex(address.message, /host:port/);
});

test('the deploy/ha compose file and Kubernetes manifests configure registries the registry accepts, on sentinels with durable acknowledgement', async (t) => {
  const compose = parse(await readFile(path.join(DEPLOY_HA, 'compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<string, { environment?: Record<string, string>; image?: string }>;
  };
  const registries = Object.keys(compose.services).filter((name) => name.startsWith('registry-'));
  const sentinels = Object.keys(compose.services).filter((name) => name.startsWith('sentinel-'));
  t.is(registries.length, 3);
  t.is(sentinels.length, 3);
  const fromCompose = loadConfig({ env: compose.services[registries[0]!]!.environment ?? {} });
  t.is(fromCompose.redis.sentinel?.sentinels.length, 3);
  t.is(fromCompose.redis.minReplicasAcked, 1);
  t.is(fromCompose.storage.driver, 's3');

  const objects = parseAllDocuments(await readFile(path.join(DEPLOY_HA, 'kubernetes', 'registry.yaml'), 'utf8')).map(
    (document) => document.toJS() as { kind: string; data?: Record<string, string>; spec?: { replicas?: number } },
  );
  const directory = await mkdtemp(path.join(tmpdir(), 'berth-deploy-ha-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const file = path.join(directory, 'berth.yml');
  await writeFile(file, objects.find((object) => object.kind === 'ConfigMap')?.data?.['berth.yml'] ?? '');
  const fromKubernetes = loadConfig({ file });
  t.is(fromKubernetes.redis.sentinel?.masterName, 'berth');
  t.is(fromKubernetes.redis.minReplicasAcked, 1);
  t.is(objects.find((object) => object.kind === 'Deployment')?.spec?.replicas, 3);
});
