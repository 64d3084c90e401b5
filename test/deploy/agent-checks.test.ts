import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { replicas, servedBy, watchService } from '../helpers/deploy-checks.js';
import { type DeployCluster, fastDeployEnv, type Json, withTwoNodeCluster } from '../helpers/deploy-cluster.js';
import { uniqueRepo } from '../helpers/oci-content.js';

const FAST = fastDeployEnv(10);

/** The web service with one x-berth http check on the container port (the published port is 8080). */
const compose = (repository: string, checkPath: string) => ({
  services: {
    web: {
      image: `${repository}:main`,
      ports: ['8080:80'],
      stop_grace_period: '1s',
      deploy: { replicas: 2, update_config: { monitor: '3s' } },
      'x-berth': {
        healthy_deadline: '30s',
        checks: [{ http: { port: 80, path: checkPath }, interval: '200ms', timeout: '1s', retries: 2 }],
      },
    },
  },
});

let cluster: DeployCluster;
let directory: string;
const repository = uniqueRepo('h18b');

withTwoNodeCluster(test, FAST, (made) => ({ cluster, directory } = made));

const deploy = async (checkPath: string) => {
  const file = path.join(directory, 'compose.yaml');
  await writeFile(file, JSON.stringify(compose(repository, checkPath)));
  return cluster.berth(['deploy', '-f', file, 'shop', '--wait', '--timeout', '120']);
};

test.serial('a service whose x-berth http check path answers becomes healthy on every node', async (t) => {
  await cluster.pushWebImage(repository, 'main', 'v1');
  const deployed = await deploy('/index.html');
  t.is(deployed.code, 0, deployed.stderr + deployed.stdout);
  t.regex(deployed.stdout, /shop\/web: succeeded/);
  const service = (await cluster.admin('GET', 'stacks/shop/services/web')).body;
  t.deepEqual(
    replicas(service).map((replica) => replica.health),
    ['healthy', 'healthy'],
  );
  for (const node of cluster.nodes) t.is(await servedBy(cluster.addressOf(node), 8080), '200 v1');
});

test.serial(
  'a service whose x-berth http check path answers 404 is never reported healthy, and its rollout is reverted naming the check',
  async (t) => {
    const ended = (service: Json) => service.rollout?.revision === 2 && !['rolling', 'reverting'].includes(service.rollout.status);
    const [samples, deployed] = await Promise.all([watchService(cluster, 'shop/web', ended), deploy('/healthz')]);
    t.is(deployed.code, 1, deployed.stdout + deployed.stderr);
    t.regex(deployed.stdout, /shop\/web: reverted: replica \d+: the new replica became unhealthy: http :80\/healthz answered 404/);
    t.is(samples.at(-1)!.service.rollout.status, 'reverted');
    t.regex(samples.at(-1)!.service.rollout.reason as string, /http :80\/healthz answered 404/);
    t.false(
      samples.some((sample) => replicas(sample.service).some((replica) => replica.revision === 2 && replica.health === 'healthy')),
      'no replica of the revision with the failing check was ever reported healthy',
    );
    const settled = await watchService(
      cluster,
      'shop/web',
      (service) => replicas(service).length === 2 && replicas(service).every((r) => r.revision === 1 && r.health === 'healthy'),
    );
    t.is(replicas(settled.at(-1)!.service).length, 2, 'back on the first revision, healthy');
    for (const node of cluster.nodes) t.is(await servedBy(cluster.addressOf(node), 8080), '200 v1');
  },
);
