import test, { type ExecutionContext } from 'ava';
import { eventually } from '../helpers/eventually.js';
import { pushImage, uniqueRepo } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { SimulatedNode, type SimulatedAssignment } from '../helpers/simulated-node.js';

const FAST = {
  BERTH_DEPLOY__NODE_GRACE_SECONDS: '2',
  BERTH_DEPLOY__CONTROLLER_TICK_MS: '200',
  BERTH_DEPLOY__CONTROLLER_LEASE_SECONDS: '3',
};

interface ServiceStatus {
  desired: number;
  rollout: { status: string; revision: number; target: number; reason: string | null; lastHealthy: number | null } | null;
  unplaced: string | null;
  replicas: Array<{ slot: string; node: string; revision: number; health: string }>;
}

// JSON answers of many shapes, each asserted field by field.
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function admin(registry: RegistryProcess, method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const response = await fetch(`${registry.url}/admin/v1/${path}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

const status = async (registry: RegistryProcess, service: string): Promise<ServiceStatus> =>
  (await admin(registry, 'GET', `stacks/shop/services/${service}`)).body as ServiceStatus;

async function joinNodes(t: ExecutionContext, registry: RegistryProcess, names: string[]): Promise<SimulatedNode[]> {
  const { status: code, body } = await admin(registry, 'POST', 'nodes/tokens', {});
  t.is(code, 201);
  const nodes = await Promise.all(
    names.map((name) => SimulatedNode.join(registry.url, body.token as string, name, { zone: name === 'n4' ? 'b' : 'a' })),
  );
  for (const node of nodes) node.start();
  t.teardown(() => Promise.all(nodes.map((node) => node.stop())));
  return nodes;
}

const webCompose = (repository: string) => ({
  services: {
    web: {
      image: `${repository}:main`,
      ports: ['8080:80'],
      healthcheck: { test: ['CMD', 'true'], interval: '100ms', timeout: '100ms', retries: 1 },
      deploy: { replicas: 3, update_config: { monitor: '300ms' } },
      'x-berth': { track: 'main', healthy_deadline: '3s' },
    },
  },
});

test.serial('a deploy stores a revision with the digest the tag resolved to, and the nodes converge to it', async (t) => {
  const registry = await RegistryProcess.start({ env: FAST });
  t.teardown(() => registry.destroy());
  const repository = uniqueRepo('shop');
  const image = await pushImage(registry.url, repository, { tag: 'main' });
  const nodes = await joinNodes(t, registry, ['n1', 'n2', 'n3', 'n4']);

  const deployed = await admin(registry, 'POST', 'stacks/shop', { compose: webCompose(repository) });
  t.is(deployed.status, 200, JSON.stringify(deployed.body));
  t.deepEqual(deployed.body.services.web, { revision: 1, digest: image.digest, changed: true });
  const again = await admin(registry, 'POST', 'stacks/shop', { compose: webCompose(repository) });
  t.deepEqual(again.body.services.web, { revision: 1, digest: image.digest, changed: false }, 'the same file again changes nothing');

  const converged = await eventually(
    () => status(registry, 'web'),
    (state) => state.rollout?.status === 'succeeded',
  );
  t.is(converged.replicas.length, 3);
  t.is(new Set(converged.replicas.map((replica) => replica.node)).size, 3, 'one replica per node (published port)');
  t.true(converged.replicas.every((replica) => replica.revision === 1 && replica.health === 'healthy'));
  const assigned = nodes.flatMap((node) => node.assignments);
  t.is(assigned.length, 3);
  t.true(assigned.every((assignment) => assignment.image === `${repository}@${image.digest}`));

  const history = await admin(registry, 'GET', 'stacks/shop/services/web/history');
  t.deepEqual(
    history.body.history.map((entry: { event: string }) => entry.event),
    ['succeeded', 'started', 'created'],
  );
  t.like(history.body.revisions[0], { number: 1, digest: image.digest, cause: 'deploy' });
  t.deepEqual((await admin(registry, 'GET', 'stacks')).body, { stacks: [{ name: 'shop', services: ['web'] }] });
});

test.serial(
  'a push to the tracked tag rolls out by itself; a push whose replicas fail is reverted and its digest quarantined',
  async (t) => {
    const registry = await RegistryProcess.start({ env: FAST });
    t.teardown(() => registry.destroy());
    const repository = uniqueRepo('shop');
    await pushImage(registry.url, repository, { tag: 'main' });
    const nodes = await joinNodes(t, registry, ['n1', 'n2', 'n3']);
    await admin(registry, 'POST', 'stacks/shop', { compose: webCompose(repository) });
    await eventually(
      () => status(registry, 'web'),
      (state) => state.rollout?.status === 'succeeded',
    );

    const second = await pushImage(registry.url, repository, { tag: 'main' });
    const rolled = await eventually(
      () => status(registry, 'web'),
      (state) => state.rollout?.revision === 2 && state.rollout.status === 'succeeded',
    );
    t.true(rolled.replicas.every((replica) => replica.revision === 2));
    const revisions = (await admin(registry, 'GET', 'stacks/shop/services/web/history')).body.revisions;
    t.like(revisions[0], { number: 2, digest: second.digest, cause: 'push' });

    const bad = await pushImage(registry.url, repository, { tag: 'main' });
    const badImage = `${repository}@${bad.digest}`;
    for (const node of nodes)
      node.healthOf = (assignment: SimulatedAssignment) => (assignment.image === badImage ? 'unhealthy' : 'healthy');
    const reverted = await eventually(
      () => status(registry, 'web'),
      (state) => state.rollout?.revision === 3 && state.rollout.status === 'reverted',
    );
    t.regex(reverted.rollout?.reason ?? '', /became unhealthy/);
    await eventually(
      () => status(registry, 'web'),
      (state) => state.replicas.every((replica) => replica.revision === 2 && replica.health === 'healthy'),
    );
    const events = (await admin(registry, 'GET', 'stacks/shop/services/web/history')).body.history.map(
      (entry: { event: string }) => entry.event,
    );
    t.deepEqual(events.slice(0, 4), ['reverted', 'quarantined', 'reverting', 'started']);

    const refused = await admin(registry, 'POST', 'stacks/shop', {
      compose: { services: { web: { ...webCompose(repository).services.web, environment: { CHANGED: '1' } } } },
    });
    t.is(refused.status, 409);
    t.is(refused.body.errors[0].code, 'DIGEST_QUARANTINED');
  },
);

test.serial(
  "node credentials: a forged or missing join token is 401, a live node's name is 409 until it is removed, and a node acts only as itself",
  async (t) => {
    const registry = await RegistryProcess.start({ env: FAST });
    t.teardown(() => registry.destroy());
    const { body } = await admin(registry, 'POST', 'nodes/tokens', {});
    const token = body.token as string;
    const join = (payload: Record<string, unknown>) =>
      fetch(`${registry.url}/deploy/v1/join`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(payload),
      });
    const base = { name: 'n1', address: '127.0.0.1', capacity: { cpus: 1, memoryBytes: 1024 } };
    const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    for (const payload of [{ ...base, token: forged }, base, { ...base, token: 'berth-join.nope.x' }]) {
      const response = await join(payload);
      t.is(response.status, 401);
      t.is(((await response.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'JOIN_TOKEN_INVALID');
    }
    t.deepEqual((await admin(registry, 'GET', 'nodes')).body, { nodes: [] }, 'nothing was registered');

    const node = await SimulatedNode.join(registry.url, token, 'n1');
    t.is((await node.call('heartbeat', { method: 'POST' })).status, 204);
    const noCredential = await fetch(`${registry.url}/deploy/v1/node/assignments`);
    t.is(noCredential.status, 401);
    for (const [method, route] of [
      ['GET', 'log-requests'],
      ['POST', 'logs/some-id'],
    ]) {
      const response = await fetch(`${registry.url}/deploy/v1/node/${route}`, { method });
      t.is(response.status, 401, `${method} ${route} without a node credential`);
    }
    const wrongSecret = await fetch(`${registry.url}/deploy/v1/node/assignments`, {
      headers: { Authorization: `Bearer ${node.credential.slice(0, -4)}AAAA` },
    });
    t.is(wrongSecret.status, 401);
    const foreign = await node.call('reports', {
      method: 'PUT',
      body: JSON.stringify({ replicas: [{ replica: 'other/web/1', revision: 1, health: 'healthy' }] }),
    });
    t.is(foreign.status, 400, 'a node cannot report for a replica not assigned to it');

    // The join token does not let its holder take the name of a live node.
    const takeover = await join({ ...base, token });
    t.is(takeover.status, 409);
    const refusal = ((await takeover.json()) as { errors: Array<{ code: string; message: string }> }).errors[0]!;
    t.is(refusal.code, 'NODE_NAME_IN_USE');
    t.regex(refusal.message, /node name n1 is in use .*berth node rm n1.*DELETE \/admin\/v1\/nodes\/n1/);
    t.is((await node.call('heartbeat', { method: 'POST' })).status, 204, 'the live node keeps its credential');

    // Removed by an operator, the name can be joined again, and the old credential stops working.
    t.is((await admin(registry, 'DELETE', 'nodes/n1')).status, 204);
    const rejoined = await SimulatedNode.join(registry.url, token, 'n1');
    t.is((await node.call('heartbeat', { method: 'POST' })).status, 401, 'the new join replaces the old credential');
    t.is((await rejoined.call('heartbeat', { method: 'POST' })).status, 204);
    const listed = (await admin(registry, 'GET', 'nodes')).body.nodes;
    t.is(listed.length, 1);
    t.false('credentialHash' in listed[0]);
  },
);

test.serial('bad compose input is refused naming the key, and nothing is stored', async (t) => {
  const registry = await RegistryProcess.start({ env: FAST });
  t.teardown(() => registry.destroy());
  const repository = uniqueRepo('shop');
  await pushImage(registry.url, repository, { tag: 'main' });
  const badKey = await admin(registry, 'POST', 'stacks/shop', {
    compose: {
      services: { ok: { image: `${repository}:main` }, web: { image: `${repository}:main`, deploy: { update_config: { paralelism: 2 } } } },
    },
  });
  t.is(badKey.status, 400);
  t.is(badKey.body.errors[0].code, 'COMPOSE_INVALID');
  t.regex(badKey.body.errors[0].message, /services\.web\.deploy\.update_config\.paralelism: is not a supported key/);
  const unknownImage = await admin(registry, 'POST', 'stacks/shop', {
    compose: { services: { ok: { image: `${repository}:main` }, web: { image: `${repository}:missing` } } },
  });
  t.is(unknownImage.status, 400);
  t.regex(unknownImage.body.errors[0].message, /^services\.web\.image: .* is not in this registry/);
  t.deepEqual((await admin(registry, 'GET', 'stacks')).body, { stacks: [] }, 'not even the valid service was stored');
  t.is((await admin(registry, 'GET', 'stacks/shop')).status, 404);
});

test.serial(
  'a node that stops heartbeating is marked down and its replica is placed on another node; a drained node gives its replicas up',
  async (t) => {
    const registry = await RegistryProcess.start({ env: FAST });
    t.teardown(() => registry.destroy());
    const repository = uniqueRepo('shop');
    await pushImage(registry.url, repository, { tag: 'main' });
    const nodes = await joinNodes(t, registry, ['n1', 'n2', 'n3', 'n4']);
    await admin(registry, 'POST', 'stacks/shop', { compose: webCompose(repository) });
    const first = await eventually(
      () => status(registry, 'web'),
      (state) => state.rollout?.status === 'succeeded',
    );
    const victim = first.replicas[0]!.node;
    await nodes.find((node) => node.name === victim)!.stop();
    const moved = await eventually(
      () => status(registry, 'web'),
      (state) => state.replicas.length === 3 && state.replicas.every((replica) => replica.node !== victim && replica.health === 'healthy'),
    );
    t.is(new Set(moved.replicas.map((replica) => replica.node)).size, 3);
    const listed = (await admin(registry, 'GET', 'nodes')).body.nodes as Array<{ name: string; status: string }>;
    t.is(listed.find((node) => node.name === victim)?.status, 'down');

    const drained = moved.replicas[0]!.node;
    t.is((await admin(registry, 'PATCH', `nodes/${drained}`, { availability: 'drain' })).status, 200);
    const afterDrain = await eventually(
      () => status(registry, 'web'),
      (state) => state.replicas.every((replica) => replica.node !== drained),
    );
    t.is(afterDrain.unplaced, '1 replica(s) over the limit of 1 per node on 2 eligible node(s)');
    await eventually(
      async () => nodes.find((node) => node.name === drained)!.assignments.length,
      (count) => count === 0,
    );
  },
);

test.serial('a registry restart keeps the stacks and resumes a rollout where it was', async (t) => {
  let registry = await RegistryProcess.start({ env: FAST });
  const dataDir = registry.dataDir;
  t.teardown(() => registry.destroy());
  const repository = uniqueRepo('shop');
  await pushImage(registry.url, repository, { tag: 'main' });
  const port = registry.port;
  const nodes = await joinNodes(t, registry, ['n1', 'n2', 'n3']);
  // A deadline far past a restart's length: the rollout must resume across it, not revert for the restart's pause.
  const slow = {
    ...webCompose(repository).services.web,
    'x-berth': { track: 'main', healthy_deadline: '120s' },
    deploy: { replicas: 3, update_config: { monitor: '2s' } },
  };
  await admin(registry, 'POST', 'stacks/shop', { compose: { services: { web: slow } } });
  await eventually(
    () => status(registry, 'web'),
    (state) => state.rollout?.status === 'succeeded',
  );
  await pushImage(registry.url, repository, { tag: 'main' });
  const midway = await eventually(
    () => status(registry, 'web'),
    (state) => state.rollout?.revision === 2 && state.replicas.some((replica) => replica.revision === 2),
  );
  t.is(midway.rollout?.status, 'rolling');
  // The agents wait (and retry) while the registry restarts; their keep-alive polls would hold its shutdown open.
  await Promise.all(nodes.map((node) => node.stop()));
  await registry.stop();
  registry = await RegistryProcess.start({ env: FAST, dataDir, port });
  for (const node of nodes) node.start();
  const resumed = await eventually(
    () => status(registry, 'web'),
    (state) => state.rollout?.revision === 2 && state.rollout.status === 'succeeded',
    30_000,
  );
  t.true(resumed.replicas.every((replica) => replica.revision === 2));
  t.true(nodes.every((node) => node.assignments.every((assignment) => assignment.revision === 2)));
  t.deepEqual((await admin(registry, 'GET', 'stacks')).body, { stacks: [{ name: 'shop', services: ['web'] }] });
});

test.serial(
  'DELETE on a stack answers 202 naming its services, which are gone at once; the nodes lose their replicas; a second DELETE is 404 naming the stack',
  async (t) => {
    const registry = await RegistryProcess.start({ env: FAST });
    t.teardown(() => registry.destroy());
    const repository = uniqueRepo('shop');
    await pushImage(registry.url, repository, { tag: 'main' });
    const nodes = await joinNodes(t, registry, ['n1', 'n2', 'n3']);
    const compose = webCompose(repository);
    const withWorker = { services: { ...compose.services, worker: { image: `${repository}:main`, deploy: { mode: 'global' } } } };
    await admin(registry, 'POST', 'stacks/shop', { compose: withWorker });
    await admin(registry, 'POST', 'stacks/keep', { compose: { services: { api: { image: `${repository}:main` } } } });
    await eventually(
      () => Promise.all([status(registry, 'web'), status(registry, 'worker')]),
      (states) => states.every((state) => state.rollout?.status === 'succeeded'),
    );
    t.is(nodes.flatMap((node) => node.assignments).filter((assignment) => assignment.replica.startsWith('shop/')).length, 6);

    const removed = await admin(registry, 'DELETE', 'stacks/shop');
    t.is(removed.status, 202, JSON.stringify(removed.body));
    t.deepEqual(removed.body, { stack: 'shop', services: ['web', 'worker'] });
    t.deepEqual((await admin(registry, 'GET', 'stacks')).body, { stacks: [{ name: 'keep', services: ['api'] }] });
    const gone = await admin(registry, 'GET', 'stacks/shop');
    t.is(gone.status, 404);
    t.is(gone.body.errors[0].code, 'STACK_UNKNOWN');
    t.is((await admin(registry, 'GET', 'stacks/shop/services/web')).status, 404);

    await eventually(
      () => Promise.resolve(nodes.flatMap((node) => node.assignments.map((assignment) => assignment.replica))),
      (replicas) => replicas.length === 1,
    );
    t.deepEqual(
      nodes.flatMap((node) => node.assignments.map((assignment) => assignment.replica)),
      ['keep/api/1'],
      "only the other stack's replica is left",
    );

    const again = await admin(registry, 'DELETE', 'stacks/shop');
    t.is(again.status, 404);
    t.like(again.body.errors[0], { code: 'STACK_UNKNOWN', message: 'no stack shop' });
    t.is((await admin(registry, 'DELETE', 'stacks/Bad Name!')).status, 400);

    // Deployed again, the service goes on numbering its revisions: no node takes an old container for the new one.
    const redeployed = await admin(registry, 'POST', 'stacks/shop', { compose });
    t.is(redeployed.body.services.web.revision, 2);
    const history = await admin(registry, 'GET', 'stacks/shop/services/web/history');
    t.deepEqual(
      history.body.revisions.map((revision: { number: number }) => revision.number),
      [2],
      'nothing of the removed service is left but its counter',
    );
    await eventually(
      () => status(registry, 'web'),
      (state) => state.rollout?.status === 'succeeded' && state.replicas.length === 3,
    );
  },
);
