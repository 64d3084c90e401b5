import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { clientLoop, replicas, servedBy, watchService } from '../helpers/deploy-checks.js';
import { type DeployCluster, fastDeployEnv, type Json, withTwoNodeCluster } from '../helpers/deploy-cluster.js';
import { eventually } from '../helpers/eventually.js';
import { uniqueRepo } from '../helpers/oci-content.js';

// Every pull needs a token: the agents have no login, and pull with their node's pull token.
const FAST = { ...fastDeployEnv(20), BERTH_AUTH__ENABLED: 'true' };

const web = (repository: string) => ({
  image: `${repository}:main`,
  ports: ['8080:80'],
  stop_grace_period: '1s',
  // Long enough for the registry to be killed between the two replicas' updates.
  deploy: { replicas: 2, update_config: { monitor: '3s' } },
  // Far past a registry restart under load: the rollout must go on across it, not revert for its pause.
  'x-berth': { track: 'main', healthy_deadline: '120s' },
});

// One two-node cluster for the file (withTwoNodeCluster).
let cluster: DeployCluster;
let directory: string;
const repository = uniqueRepo('h18');

withTwoNodeCluster(test, FAST, (made) => ({ cluster, directory } = made));

const settledOn = (revision: number) => (service: Json) =>
  service.rollout?.status === 'succeeded' &&
  service.rollout.revision === revision &&
  replicas(service).length === 2 &&
  replicas(service).every((r) => r.revision === revision && r.health === 'healthy');

test.serial(
  'with a registry that requires auth and no login saved on the agent hosts, a stack converges: each node pulls with its own pull token',
  async (t) => {
    await cluster.pushWebImage(repository, 'main', 'v1');
    for (const node of cluster.nodes) {
      await t.throwsAsync(access(path.join(cluster.agent(node).dataDir, 'credentials.json')), { code: 'ENOENT' }, `no login on ${node}`);
      const byHand = await cluster.agent(node).cli(['pull', `${cluster.registry.host}/${repository}:main`], { allowFailure: true });
      t.not(byHand.code, 0, `a pull by hand on ${node}, with the host's (absent) login, is refused`);
      t.regex(byHand.stderr, /401|unauthorized|authentication required/i);
    }
    const file = path.join(directory, 'compose.yaml');
    await writeFile(file, JSON.stringify({ services: { web: web(repository) } }));
    const deployed = await cluster.berth(['stack', 'deploy', '-c', file, 'shop', '--wait', '--timeout', '120']);
    t.is(deployed.code, 0, deployed.stderr + deployed.stdout);
    const service = (await cluster.admin('GET', 'stacks/shop/services/web')).body;
    t.deepEqual(
      replicas(service)
        .map((r) => `${r.node} ${r.revision} ${r.health}`)
        .sort(),
      ['n1 1 healthy', 'n2 1 healthy'],
    );
    for (const node of cluster.nodes) t.is(await servedBy(cluster.addressOf(node), 8080), '200 v1');
  },
);

test.serial('a registry killed mid-rollout and started again finishes the rollout, and the agents keep serving throughout', async (t) => {
  const load = clientLoop(cluster.nodes.map((node) => cluster.addressOf(node)));
  await cluster.pushWebImage(repository, 'main', 'v2');
  const midway = await watchService(cluster, 'shop/web', (service) =>
    replicas(service).some((r) => r.revision === 2 && r.health === 'healthy'),
  );
  t.is(midway.at(-1)!.service.rollout.status, 'rolling', 'killed mid-rollout');
  await cluster.restartRegistry();
  const finished = await watchService(cluster, 'shop/web', settledOn(2));
  const requests = await load.stop();

  t.is(finished.at(-1)!.service.rollout.status, 'succeeded');
  t.deepEqual(requests.failures, [], 'no request failed: the agents serve without the registry');
  t.true(requests.bodies.has('v1') && requests.bodies.has('v2'));
  for (const node of cluster.nodes) t.is(await servedBy(cluster.addressOf(node), 8080), '200 v2');
  for (const node of cluster.nodes)
    t.is(cluster.agent(node).logs.match(/joined the registry/g)?.length, 1, `${node} went on as the same node, without joining again`);
});

/** Every Berth container of every node: what a refused deploy must leave as it was. */
async function fleet(): Promise<Record<string, string[]>> {
  const entries = await Promise.all(
    cluster.nodes.map(async (node) => {
      const ids = (await cluster.agent(node).cli(['ps', '-a', '-q', '--no-trunc'])).stdout.split('\n').filter(Boolean);
      return [node, ids.sort()] as const;
    }),
  );
  return Object.fromEntries(entries);
}

test.serial('a bad compose file through berth stack deploy is refused with the reason, and nothing changes on the agents', async (t) => {
  // The first step's retired containers may still be stopping (under load, past their grace period): what a
  // refused deploy must leave alone is the fleet once they are gone, one replica per node.
  const before = await eventually(fleet, (containers) => Object.values(containers).every((ids) => ids.length === 1), 90_000);
  const service = (await cluster.admin('GET', 'stacks/shop/services/web')).body;
  const deploy = async (stack: string, document: Json) => {
    const file = path.join(directory, `${stack}-bad.yaml`);
    await writeFile(file, JSON.stringify(document));
    return cluster.berth(['stack', 'deploy', '-c', file, stack, '--wait', '--timeout', '30']);
  };
  const good = web(repository);
  const cases: Array<{ stack: string; document: Json; code: number; reason: RegExp }> = [
    {
      stack: 'shop',
      document: { services: { web: { ...good, deploy: { replicas: 2, update_config: { paralelism: 2 } } } } },
      code: 2,
      reason: /services\.web\.deploy\.update_config\.paralelism: is not a supported key/,
    },
    {
      stack: 'shop',
      document: { services: { web: { ...good, stop_grace_period: 'one minute' } } },
      code: 2,
      reason: /services\.web\.stop_grace_period: /,
    },
    {
      stack: 'shop',
      document: { services: { web: { ...good, deploy: { placement: { constraints: ['node.zone == a'] } } } } },
      code: 2,
      reason: /services\.web\.deploy\.placement\.constraints\[0\]: unsupported constraint "node\.zone == a"/,
    },
    {
      stack: 'shop',
      document: { services: { web: good, admin: { image: `${repository}:main`, ports: ['8080:8080'] } } },
      code: 2,
      reason: /services\.admin\.ports\[0\]: port 8080\/tcp is already published by services\.web\.ports\[0\]/,
    },
    {
      // The other stack's valid service is not stored either: nothing is half-applied.
      stack: 'other',
      document: { services: { ok: { image: `${repository}:main` }, api: { image: `${repository}:main`, ports: ['8080:80'] } } },
      code: 1,
      reason: /services\.api\.ports\[0\]: port 8080\/tcp is already published by shop\/web/,
    },
    {
      stack: 'shop',
      document: { services: { web: { ...good, image: `${repository}:missing`, 'x-berth': { healthy_deadline: '120s' } } } },
      code: 1,
      reason: /services\.web\.image: .* is not in this registry/,
    },
  ];
  for (const { stack, document, code, reason } of cases) {
    const refused = await deploy(stack, document);
    t.is(refused.code, code, `${reason}: ${refused.stderr}`);
    t.regex(refused.stderr, reason);
  }

  t.deepEqual(
    ((await cluster.admin('GET', 'stacks')).body.stacks as Json[]).map((stack) => stack.name),
    ['shop'],
    'no stack was made',
  );
  const after = (await cluster.admin('GET', 'stacks/shop/services/web')).body;
  t.is(after.desired, service.desired, 'no new revision');
  t.deepEqual(await fleet(), before, 'the same containers run on every node');
  for (const node of cluster.nodes) t.is(await servedBy(cluster.addressOf(node), 8080), '200 v2');
});

test.serial(
  "berth service logs gathers the replicas' lines from their nodes, each prefixed with its replica and node; --tail and -f",
  async (t) => {
    const file = path.join(directory, 'talk.yaml');
    const echo = {
      image: `${repository}:main`,
      // -vv: httpd logs each request's path to stderr.
      command: ['httpd', '-f', '-vv', '-p', '80', '-h', '/www'],
      ports: ['8090:80'],
      stop_grace_period: '1s',
      healthcheck: { test: ['NONE'] },
      deploy: { replicas: 2, update_config: { monitor: '1s' } },
    };
    await writeFile(file, JSON.stringify({ services: { echo } }));
    const deployed = await cluster.berth(['stack', 'deploy', '-c', file, 'talk', '--wait', '--timeout', '120']);
    t.is(deployed.code, 0, deployed.stderr + deployed.stdout);
    const visit = async (node: string, page: string) => {
      await (await fetch(`http://${cluster.addressOf(node)}:8090/${page}`, { signal: AbortSignal.timeout(3000) })).arrayBuffer();
    };
    for (const node of cluster.nodes) await visit(node, `from-${node}`);

    const logs = await eventually(
      () => cluster.berth(['service', 'logs', 'talk/echo']),
      (result) => cluster.nodes.every((node) => result.stdout.includes(`url:/from-${node}`)),
      30_000,
    );
    t.is(logs.code, 0, logs.stderr);
    for (const node of cluster.nodes) t.regex(logs.stdout, new RegExp(`^talk_echo\\.[12]@${node} \\| .*: url:/from-${node}$`, 'm'));

    const tail = await cluster.berth(['service', 'logs', '--tail', '1', 'talk/echo']);
    t.is(tail.code, 0, tail.stderr);
    const lastLines = tail.stdout.split('\n').filter(Boolean);
    t.is(lastLines.length, 2, `one line per replica: ${tail.stdout}`);
    t.deepEqual(lastLines.map((line) => /@(n\d) \|/.exec(line)?.[1]).sort(), ['n1', 'n2']);

    const follower = cluster.spawnBerth(['service', 'logs', '-f', '--tail', '0', 'talk/echo']);
    t.teardown(() => follower.kill());
    let followed = '';
    follower.stdout.on('data', (chunk: Buffer) => (followed += chunk.toString()));
    // Visited until followed: the follower may not have reached the node before the first visits.
    await eventually(
      async () => {
        await visit('n2', 'later');
        return followed;
      },
      (text) => /^talk_echo\.[12]@n2 \| .*: url:\/later$/m.test(text),
      // The follower's request reaches the node on its next long-poll: seconds, but a minute under load.
      60_000,
    );
    t.false(followed.includes('from-n1'), '--tail 0: only what came after');
    t.is(follower.exitCode, null, 'still following');

    const unknown = await cluster.berth(['service', 'logs', 'talk/nope']);
    t.is(unknown.code, 1);
    t.regex(unknown.stderr, /no service talk\/nope/);
  },
);

test.serial('a compose healthcheck in CMD form runs in an image without /bin/sh, and its replicas become healthy', async (t) => {
  const bare = uniqueRepo('h18-bare');
  await cluster.pushWebImage(bare, 'main', 'bare', 'shell-less');
  const probe = ['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1/'];
  const file = path.join(directory, 'bare.yaml');
  const bareWeb = {
    image: `${bare}:main`,
    ports: ['8070:80'],
    stop_grace_period: '1s',
    healthcheck: { test: probe, interval: '500ms', timeout: '10s', retries: 1 },
    deploy: { replicas: 2, update_config: { parallelism: 0 } },
    'x-berth': { healthy_deadline: '120s' },
  };
  await writeFile(file, JSON.stringify({ services: { web: bareWeb } }));
  const deployed = await cluster.berth(['stack', 'deploy', '-c', file, 'bare', '--wait', '--timeout', '150']);
  t.is(deployed.code, 0, deployed.stderr + deployed.stdout);
  t.regex(deployed.stdout, /bare\/web: succeeded/);

  for (const node of cluster.nodes) {
    const agent = cluster.agent(node);
    const rows = (await agent.cli(['ps', '--no-trunc', '--format', '{{.ID}} {{.Names}}'])).stdout.split('\n');
    const id = rows.find((row) => row.split(' ')[1]?.startsWith('bare_web.'))?.split(' ')[0];
    t.truthy(id, `${node} runs a replica: ${rows.join('; ')}`);
    const config = JSON.parse((await agent.cli(['inspect', '-f', '{{json .Config.Healthcheck}}', id!])).stdout) as Json;
    t.deepEqual(config.Test, probe, `${node}: the probe as the compose file gave it, no shell around it`);
    const health = JSON.parse((await agent.cli(['inspect', '-f', '{{json .State.Health}}', id!])).stdout) as Json;
    t.is(health.Status, 'healthy', node);
    const shell = await agent.cli(['exec', id!, '/bin/sh', '-c', 'true'], { allowFailure: true });
    t.not(shell.code, 0, `${node}: the image has no shell`);
    t.is(await servedBy(cluster.addressOf(node), 8070), '200 bare');
  }
});

/** How a connection to a published port ends once nothing publishes it: refused, not answered. */
async function closed(address: string, port: number): Promise<string> {
  try {
    return `answered ${await servedBy(address, port)}`;
  } catch (error) {
    return ((error as Error).cause as NodeJS.ErrnoException | undefined)?.code ?? (error as Error).message;
  }
}

test.serial(
  "berth stack rm removes every service of the stacks: the agents stop and remove the replicas' containers and the published ports close",
  async (t) => {
    const stacks = ((await cluster.admin('GET', 'stacks')).body.stacks as Json[]).map((stack) => stack.name as string);
    t.deepEqual(stacks, ['bare', 'shop', 'talk'], 'the stacks the earlier steps deployed');
    t.true(
      Object.values(await fleet()).every((ids) => ids.length > 0),
      'every node runs replicas',
    );

    const removed = await cluster.berth(['stack', 'rm', 'shop', 'talk', 'bare']);
    t.is(removed.code, 0, removed.stderr);
    t.is(removed.stdout, 'Removing service shop/web\nRemoving service talk/echo\nRemoving service bare/web\n');
    const listed = await cluster.berth(['stack', 'ls']);
    t.deepEqual(JSON.parse(listed.stdout), { stacks: [] }, 'gone from stack ls at once');

    const emptied = await eventually(
      () => fleet(),
      (fleetNow) => Object.values(fleetNow).every((ids) => ids.length === 0),
      90_000,
    );
    t.deepEqual(emptied, { n1: [], n2: [] }, 'no container left on either node, stopped or not');
    for (const node of cluster.nodes)
      for (const port of [8080, 8090, 8070]) t.is(await closed(cluster.addressOf(node), port), 'ECONNREFUSED', `${node}:${port}`);

    const again = await cluster.berth(['stack', 'rm', 'shop']);
    t.is(again.code, 1);
    t.is(again.stderr, 'berth: no stack shop\n');
    t.is(again.stdout, '');
  },
);
