import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { clientLoop, replicas, servedBy, watchService } from '../helpers/deploy-checks.js';
import { DeployCluster, fastDeployEnv, type Json, withTwoNodeCluster } from '../helpers/deploy-cluster.js';
import { uniqueRepo } from '../helpers/oci-content.js';

const FAST = fastDeployEnv(10);
const compose = (repository: string, web: Json = {}) => ({
  services: {
    web: {
      image: `${repository}:main`,
      ports: ['8080:80'],
      // busybox httpd as pid 1 ignores SIGTERM: each stop lasts the whole grace period.
      stop_grace_period: '1s',
      deploy: { replicas: 2, update_config: { monitor: '1s' } },
      'x-berth': { track: 'main', healthy_deadline: '30s' },
      ...web,
    },
  },
});

const answer = (address: string) => servedBy(address, 8080);
const watch = (cluster: DeployCluster, done: (service: Json) => boolean) => watchService(cluster, 'shop/web', done);

const settledOn = (revision: number) => (service: Json) =>
  service.rollout?.status !== 'rolling' &&
  service.rollout?.status !== 'reverting' &&
  replicas(service).length === 2 &&
  replicas(service).every((r) => r.revision === revision && r.health === 'healthy');

// One two-node cluster for the rollout steps (withTwoNodeCluster).
let cluster: DeployCluster;
let directory: string;
const repository = uniqueRepo('h18');
let v2 = '';
let bad = '';

withTwoNodeCluster(test, FAST, (made) => ({ cluster, directory } = made));

test.serial(
  'a push to the tracked tag rolls the service out one replica at a time, each healthy before the next, and a client loop sees no failed request',
  async (t) => {
    const v1 = await cluster.pushWebImage(repository, 'main', 'v1');
    const file = path.join(directory, 'compose.yaml');
    await writeFile(file, JSON.stringify(compose(repository)));
    const deployed = await cluster.berth(['deploy', '-f', file, 'shop', '--wait', '--timeout', '120']);
    t.is(deployed.code, 0, deployed.stderr + deployed.stdout);
    t.regex(deployed.stdout, /shop\/web: succeeded/);
    for (const node of cluster.nodes) t.is(await answer(cluster.addressOf(node)), '200 v1');

    const load = clientLoop(cluster.nodes.map((node) => cluster.addressOf(node)));
    v2 = await cluster.pushWebImage(repository, 'main', 'v2');
    const rolled = await watch(cluster, settledOn(2));
    const requests = await load.stop();
    t.true(requests.ok > 20, `the client loop ran (${requests.ok} answers)`);
    t.deepEqual(requests.failures, [], 'no request failed while the service rolled out (start-first on the published port)');
    t.true(requests.bodies.has('v1') && requests.bodies.has('v2'), 'the answers went from v1 to v2');
    t.is(rolled.at(-1)!.service.rollout.status, 'succeeded');
    // One at a time: the second slot gets revision 2 only once the first one is healthy on it.
    const firstOn2 = (slot: string) =>
      rolled.find((sample) => replicas(sample.service).some((r) => r.slot === slot && r.revision === 2))!.at;
    const healthyOn2 = (slot: string) =>
      rolled.find((sample) => replicas(sample.service).some((r) => r.slot === slot && r.revision === 2 && r.health === 'healthy'))?.at;
    const [early, late] = ['1', '2'].sort((a, b) => firstOn2(a) - firstOn2(b));
    t.true(healthyOn2(early!)! <= firstOn2(late!), 'the next replica was replaced only after the first new one was healthy');
    t.false(
      rolled.some((sample) => replicas(sample.service).every((r) => r.revision === 2 && r.health !== 'healthy')),
      'never both replicas new and unhealthy at once',
    );
    for (const node of cluster.nodes) t.is(await answer(cluster.addressOf(node)), '200 v2');
    const history = (await cluster.admin('GET', 'stacks/shop/services/web/history')).body;
    t.regex(JSON.stringify(history), new RegExp(`push: ${repository}@${v2}`));

    t.not(v1, v2);
  },
);

test.serial('a push whose health check fails is reverted by itself to the previous digest, which is quarantined for the tag', async (t) => {
  bad = await cluster.pushWebImage(repository, 'main', 'v3 unhealthy', 'unhealthy');
  const reverted = await watch(cluster, (service) => service.rollout?.status === 'reverted' && settledOn(2)(service));
  t.regex(reverted.at(-1)!.service.rollout.reason as string, /unhealthy|failed/);
  for (const node of cluster.nodes) t.is(await answer(cluster.addressOf(node)), '200 v2', 'back on the previous digest');
  const status = await cluster.berth(['rollout', 'status', 'shop/web']);
  t.is(status.code, 1);
  t.regex(status.stdout, /reverted/);
  const afterRevert = JSON.stringify((await cluster.admin('GET', 'stacks/shop/services/web/history')).body);
  t.regex(afterRevert, new RegExp(`quarantined.*${bad.slice(7, 19)}|${bad}`));

  // The same bad digest pushed again under the tag is not rolled out again.
  await cluster.pushWebImage(repository, 'main', 'v3 unhealthy', 'unhealthy');
  await new Promise((resolve) => setTimeout(resolve, 3000));
  t.is(
    (await cluster.admin('GET', 'stacks/shop/services/web')).body.desired,
    reverted.at(-1)!.service.desired,
    'no new revision for a quarantined digest',
  );
});

test.serial('deploy --wait: refused for a quarantined digest; non-zero with the reason when the rollout is reverted', async (t) => {
  const file = path.join(directory, 'compose.yaml');
  // The tag now names the failing digest: a deploy of the file is refused, naming it.
  const refused = await cluster.berth(['deploy', '-f', file, 'shop', '--wait', '--timeout', '120']);
  t.not(refused.code, 0);
  t.regex(refused.stderr, new RegExp(`${bad} failed a rollout`));

  // A deploy whose own health check fails, on the good digest: --wait exits non-zero with the reason.
  const pinned = { image: `${repository}@${v2}`, 'x-berth': { healthy_deadline: '30s' } };
  await writeFile(file, JSON.stringify(compose(repository, pinned)));
  const pinnedDeploy = await cluster.berth(['deploy', '-f', file, 'shop', '--wait', '--timeout', '120']);
  t.is(pinnedDeploy.code, 0, pinnedDeploy.stderr);
  const failingCheck = { ...pinned, healthcheck: { test: ['CMD', 'false'], interval: '200ms', timeout: '1s', retries: 2 } };
  await writeFile(
    file,
    JSON.stringify(compose(repository, { ...failingCheck, deploy: { replicas: 2, update_config: { monitor: '3s' } } })),
  );
  const failing = await cluster.berth(['deploy', '-f', file, 'shop', '--wait', '--timeout', '120']);
  t.is(failing.code, 1, failing.stdout + failing.stderr);
  t.regex(failing.stdout, /shop\/web: reverted: replica \d+: the new replica became unhealthy/);
  for (const node of cluster.nodes) t.is(await answer(cluster.addressOf(node)), '200 v2');
});

test.serial(
  "a forged or missing join token is refused: by the node API with 401, and an agent given one stops with the reason; so is an agent joining under a live node's name",
  async (t) => {
    const bare = await DeployCluster.start([], FAST);
    t.teardown(() => bare.destroy());
    const join = (token: string | undefined) =>
      fetch(`${bare.registry.url}/deploy/v1/join`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          ...(token === undefined ? {} : { token }),
          name: 'x1',
          address: '10.0.0.9',
          capacity: { cpus: 1, memoryBytes: 1024 },
        }),
      });
    t.is((await join('berth-join.forged.c2VjcmV0')).status, 401);
    t.is((await join(undefined)).status, 401);
    const unauthenticated = await fetch(`${bare.registry.url}/deploy/v1/node/assignments`);
    t.is(unauthenticated.status, 401);

    const error = await t.throwsAsync(
      AgentDaemon.start([
        '--insecure-registry',
        bare.registry.host,
        '--join',
        bare.registry.url,
        '--token',
        'berth-join.forged.c2VjcmV0',
        '--node-name',
        'x2',
      ]),
    );
    t.regex(error.message, /joining http:\/\/.* failed: the registry refused the node/);
    t.deepEqual((await bare.admin('GET', 'nodes')).body.nodes, [], 'no node was registered');

    // A valid token does not let an agent take the name of a live node.
    const token = (await cluster.admin('POST', 'nodes/tokens', {})).body.token as string;
    const takeover = await AgentDaemon.start([
      '--insecure-registry',
      cluster.registry.host,
      '--join',
      cluster.registry.url,
      '--token',
      token,
      '--node-name',
      'n1',
    ]).then(
      async (daemon) => {
        await daemon.destroy();
        return 'the agent started';
      },
      (refusal: Error) => refusal.message,
    );
    t.regex(takeover, /failed: the registry refused the join: node name n1 is in use .*berth node rm n1/);
    const n1 = ((await cluster.admin('GET', 'nodes')).body.nodes as Json[]).find((node) => node.name === 'n1');
    t.is(n1?.address, cluster.addressOf('n1'), 'n1 is still the node its own agent joined as');
  },
);
