import { stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import test from 'ava';
import { DeployCluster, fastDeployEnv, type Json } from '../helpers/deploy-cluster.js';
import { eventually } from '../helpers/eventually.js';
import { run } from '../helpers/exec.js';
import { uniqueRepo } from '../helpers/oci-content.js';

// Past an agent's restart (seconds; 40 s seen at load 25) plus the 4 s the restart test keeps the registry out of reach.
const FAST = fastDeployEnv(20);
const NODES = [
  { name: 'n1', labels: { zone: 'a' } },
  { name: 'n2', labels: { zone: 'a' } },
  { name: 'n3', labels: { zone: 'b' } },
];
const CONVERGE_MS = 90_000;

const stackCompose = (repository: string) => ({
  services: {
    web: {
      image: `${repository}:main`,
      stop_grace_period: '1s',
      ports: ['8080:80'],
      deploy: { replicas: 3, update_config: { monitor: '1s' } },
      'x-berth': { track: 'main', healthy_deadline: '30s' },
    },
    worker: {
      image: `${repository}:main`,
      stop_grace_period: '1s',
      deploy: { replicas: 3, update_config: { monitor: '1s' } },
      'x-berth': { healthy_deadline: '30s' },
    },
    edge: {
      image: `${repository}:main`,
      stop_grace_period: '1s',
      ports: ['8081:80'],
      deploy: { mode: 'global', placement: { constraints: ['node.labels.zone == a'] }, update_config: { monitor: '1s' } },
      'x-berth': { healthy_deadline: '30s' },
    },
  },
});

interface Replica {
  slot: string;
  node: string;
  revision: number;
  health: string;
}

const replicasOf = (stack: Json, service: string): Replica[] =>
  ((stack.services as Json[]).find((entry) => entry.service === `shop/${service}`)?.replicas ?? []) as Replica[];

async function answer(address: string, port: number): Promise<string> {
  const response = await fetch(`http://${address}:${port}/`, { signal: AbortSignal.timeout(3000) });
  return `${response.status} ${(await response.text()).trim()}`;
}

/** Every container an agent runs, with its labels (`berth-agent inspect`). */
async function containersOf(cluster: DeployCluster, node: string): Promise<Json[]> {
  const agent = cluster.agent(node);
  const ids = (await agent.cli(['ps', '-q', '--no-trunc'])).stdout.split('\n').filter(Boolean);
  return ids.length === 0 ? [] : (JSON.parse((await agent.cli(['inspect', ...ids])).stdout) as Json[]);
}

const SERVICES = ['web', 'worker', 'edge'];

/** The replica ids `stack ps` places on a node. */
const assignedTo = (stack: Json, node: string): string[] =>
  SERVICES.flatMap((service) =>
    replicasOf(stack, service)
      .filter((r) => r.node === node)
      .map((r) => `shop/${service}/${r.slot}`),
  ).sort();

/** The replica ids of the Berth containers running on a node. */
const replicasRunningOn = async (cluster: DeployCluster, node: string): Promise<string[]> =>
  (await containersOf(cluster, node))
    .map((c) => c.Config.Labels['io.berth.replica'] as string | undefined)
    .filter((id) => id !== undefined)
    .sort();

// One cluster for the file, each step a test of its own: under load a step takes minutes, and ava's
// timeout counts from the last finished test.
let cluster: DeployCluster;
const repository = uniqueRepo('h18');

test.before(async () => {
  cluster = await DeployCluster.start(NODES, FAST);
});

test.after.always(async () => {
  await cluster?.destroy();
});

test.afterEach.always((t) => {
  if (!t.passed) t.log(cluster.logs());
});

test.serial(
  'agents on three hosts converge a stack; stack ps shows every replica healthy on the nodes the constraints allow, answering on its node',
  async (t) => {
    await cluster.pushWebImage(repository, 'main', 'v1');

    const deployed = await cluster.admin('POST', 'stacks/shop', { compose: stackCompose(repository) });
    t.is(deployed.status, 200, JSON.stringify(deployed.body));
    const ps = await cluster.berth(['stack', 'ps', 'shop']);
    t.is(ps.code, 0, ps.stderr);
    const converged = await eventually(
      async () => JSON.parse((await cluster.berth(['stack', 'ps', 'shop'])).stdout) as Json,
      (stack) =>
        replicasOf(stack, 'web').filter((r) => r.health === 'healthy').length === 3 &&
        replicasOf(stack, 'edge').filter((r) => r.health === 'healthy').length === 2,
      CONVERGE_MS,
    );
    t.deepEqual(
      replicasOf(converged, 'web')
        .map((r) => r.node)
        .sort(),
      ['n1', 'n2', 'n3'],
      'one web replica per node',
    );
    t.deepEqual(
      replicasOf(converged, 'edge')
        .map((r) => r.node)
        .sort(),
      ['n1', 'n2'],
      'edge only on the zone a nodes',
    );
    for (const node of ['n1', 'n2', 'n3']) t.is(await answer(cluster.addressOf(node), 8080), '200 v1', `web answers on ${node}`);
    for (const node of ['n1', 'n2']) t.is(await answer(cluster.addressOf(node), 8081), '200 v1', `edge answers on ${node}`);
    t.deepEqual(
      await replicasRunningOn(cluster, 'n1'),
      assignedTo(converged, 'n1'),
      'n1 runs exactly its replicas, labelled with their ids',
    );
  },
);

test.serial(
  'an agent restarted while the registry cannot be reached keeps running the containers it adopted until the registry answers',
  async (t) => {
    const idsOf = async () => (await containersOf(cluster, 'n1')).map((c) => c.Id as string).sort();
    const before = await idsOf();
    t.true(before.length > 0, 'n1 runs replicas');
    const assignedBefore = assignedTo(JSON.parse((await cluster.berth(['stack', 'ps', 'shop'])).stdout) as Json, 'n1');
    const { netns } = cluster.hosts.hosts[0]!;
    const registryPort = new URL(cluster.registry.url).port;
    const unreachable = [
      'OUTPUT',
      '-p',
      'tcp',
      '-d',
      cluster.hosts.gateway,
      '--dport',
      registryPort,
      '-j',
      'REJECT',
      '--reject-with',
      'tcp-reset',
    ];
    await run('ip', ['netns', 'exec', netns, 'iptables', '-I', ...unreachable]);
    try {
      await cluster.agent('n1').kill();
      await cluster.agent('n1').restart();
      // Several of the node's 1 s ticks, and past the replicas' 1 s stop_grace_period.
      await sleep(4_000);
      t.deepEqual(await idsOf(), before, 'the same containers run while the registry is out of reach');
    } finally {
      await run('ip', ['netns', 'exec', netns, 'iptables', '-D', ...unreachable]);
    }
    const settled = await eventually(
      async () => JSON.parse((await cluster.berth(['stack', 'ps', 'shop'])).stdout) as Json,
      (stack) => SERVICES.every((service) => replicasOf(stack, service).every((r) => r.node !== 'n1' || r.health === 'healthy')),
      CONVERGE_MS,
    );
    if (isDeepStrictEqual(assignedTo(settled, 'n1'), assignedBefore))
      t.deepEqual(await idsOf(), before, 'once the registry answers, the adopted containers are its replicas: none is replaced');
    else {
      // Under heavy load the restart outlasted the node grace period: the registry rightly placed the
      // replicas elsewhere, and the node runs what it has now.
      t.log('n1 was silent past the grace period: its replicas were placed anew');
      t.deepEqual(await replicasRunningOn(cluster, 'n1'), assignedTo(settled, 'n1'), 'n1 runs exactly its replicas');
    }
  },
);

test.serial(
  'an agent killed: its replicated replicas are placed on the other nodes and its global one kept for its return; restarted, it resumes as the same node and runs each of its replicas once; containers Berth did not make are left alone',
  async (t) => {
    // An unmanaged container on n3 is left alone by the node's convergence.
    await cluster.agent('n3').cli(['run', '-d', '--name', 'mine', '--network', 'none', `${cluster.registry.host}/${repository}:main`]);

    await cluster.agent('n2').kill();
    const moved = await eventually(
      async () => JSON.parse((await cluster.berth(['stack', 'ps', 'shop'])).stdout) as Json,
      (stack) =>
        replicasOf(stack, 'worker').length === 3 && replicasOf(stack, 'worker').every((r) => r.node !== 'n2' && r.health === 'healthy'),
      CONVERGE_MS,
    );
    t.false(
      ['web', 'worker'].some((service) => replicasOf(moved, service).some((r) => r.node === 'n2')),
      'no replica of a replicated service left on the killed node',
    );
    t.is(
      replicasOf(moved, 'edge').filter((r) => r.node === 'n2').length,
      1,
      'the global service keeps its replica on the down node (as Swarm keeps a global task), to run it there on its return',
    );
    t.is(replicasOf(moved, 'web').length, 2, 'a web replica publishing 8080 cannot go to a node that already runs one');

    await cluster.agent('n2').restart();
    t.regex(cluster.agent('n2').logs, /resuming as the node this agent joined as before/);
    const saved = await stat(path.join(cluster.agent('n2').dataDir, 'node', 'credential.json'));
    t.is(saved.mode & 0o777, 0o600, 'the node credential is readable by root alone');
    await eventually(
      async () => (await cluster.admin('GET', 'nodes')).body,
      (nodes) => (nodes.nodes as Json[]).some((node) => node.name === 'n2' && node.status === 'ready'),
      CONVERGE_MS,
    );
    const settled = await eventually(
      async () => JSON.parse((await cluster.berth(['stack', 'ps', 'shop'])).stdout) as Json,
      (stack) => ['web', 'edge'].every((service) => replicasOf(stack, service).some((r) => r.node === 'n2' && r.health === 'healthy')),
      CONVERGE_MS,
    );
    t.deepEqual(
      await replicasRunningOn(cluster, 'n2'),
      assignedTo(settled, 'n2'),
      'the rejoined node runs each of its replicas once, and nothing it ran before its death twice',
    );
    const mine = (await containersOf(cluster, 'n3')).filter((c) => c.Name === '/mine');
    t.is(mine.length, 1, 'the container a user ran by hand is left running');
  },
);
