import test, { type ExecutionContext } from 'ava';
import { ADMIN, AuthRegistry, pushImageWithToken } from '../helpers/auth-registry.js';
import { eventually } from '../helpers/eventually.js';
import { assertRegistryError } from '../helpers/http-client.js';
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

/** A registry with an image pushed to `<repository>:main` and these nodes joined, all gone after the test. */
async function registryWithNodes(t: ExecutionContext, names: string[]) {
  const registry = await RegistryProcess.start({ env: FAST });
  t.teardown(() => registry.destroy());
  const repository = uniqueRepo('shop');
  const image = await pushImage(registry.url, repository, { tag: 'main' });
  return { registry, repository, image, nodes: await joinNodes(t, registry, names) };
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
  const { registry, repository, image, nodes } = await registryWithNodes(t, ['n1', 'n2', 'n3', 'n4']);

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
    const { registry, repository, nodes } = await registryWithNodes(t, ['n1', 'n2', 'n3']);
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
      ['POST', 'pull-token'],
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
    const { registry, repository, nodes } = await registryWithNodes(t, ['n1', 'n2', 'n3', 'n4']);
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

test.serial('single-replica services spread over the nodes: each is placed where the fewest replicas of any service run', async (t) => {
  const registry = await RegistryProcess.start({ env: FAST });
  t.teardown(() => registry.destroy());
  const repository = uniqueRepo('shop');
  await pushImage(registry.url, repository, { tag: 'main' });
  const nodes = await joinNodes(t, registry, ['n1', 'n2']);
  const names = ['a', 'b', 'c', 'd', 'e', 'f'];
  const services = Object.fromEntries(names.map((name) => [name, { image: `${repository}:main` }]));
  t.is((await admin(registry, 'POST', 'stacks/shop', { compose: { services } })).status, 200);
  await eventually(
    () => Promise.all(names.map((name) => status(registry, name))),
    (states) => states.every((state) => state.rollout?.status === 'succeeded'),
  );
  t.deepEqual(
    nodes.map((node) => node.assignments.length),
    [3, 3],
    'three replicas on each node, not all six on the first by name',
  );
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

test.serial(
  "a node's pull token pulls the repositories of its replicas and nothing else: another repository, a push and the catalog are 401; a removed node gets none",
  async (t) => {
    // Revocations seen at once, rather than within the default 5 s cache.
    const registry = await AuthRegistry.start({ env: { ...FAST, BERTH_AUTH__TOKEN__REVOCATION_CACHE_SECONDS: '0' } });
    t.teardown(() => registry.destroy());
    const [assigned, other] = [uniqueRepo('shop'), uniqueRepo('other')];
    const pushed = new Map<string, string>();
    for (const repository of [assigned, other]) {
      const token = await registry.token([`repository:${repository}:push,pull`], ADMIN);
      pushed.set(repository, (await pushImageWithToken(registry.url, token, repository, 'main')).manifest.digest);
    }
    const { token: joinToken } = await registry.admin<{ token: string }>('POST', '/nodes/tokens', {});
    const node = await SimulatedNode.join(registry.url, joinToken, 'n1');
    node.start();
    t.teardown(() => node.stop());
    await registry.admin('POST', '/stacks/shop', {
      compose: { services: { web: { image: `${assigned}:main`, deploy: { replicas: 1 }, 'x-berth': { healthy_deadline: '3s' } } } },
    });
    await eventually(
      async () => node.assignments.length,
      (count) => count === 1,
    );

    const issued = await node.call('pull-token', { method: 'POST' });
    t.is(issued.status, 200);
    t.is(issued.headers.get('cache-control'), 'no-store');
    const { token, expiresIn, repositories } = (await issued.json()) as { token: string; expiresIn: number; repositories: string[] };
    t.deepEqual(repositories, [assigned]);
    t.is(expiresIn, 300, "the registry's access token lifetime");
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string; access: unknown };
    t.is(claims.sub, 'deploy-node:n1');
    t.deepEqual(
      claims.access,
      [{ type: 'repository', name: assigned, actions: ['pull'] }],
      'pull on the assigned repository, nothing more',
    );

    const bearer = { Authorization: `Bearer ${token}` };
    const v2 = (path: string, init: RequestInit = {}) =>
      fetch(`${registry.url}/v2/${path}`, { ...init, headers: { ...bearer, ...init.headers } });
    const manifest = await v2(`${assigned}/manifests/${pushed.get(assigned)}`);
    t.is(manifest.status, 200, 'the assigned repository pulls');
    await manifest.arrayBuffer();
    const refusals: Array<[string, Response, string]> = [
      ['another repository', await v2(`${other}/manifests/main`), `repository:${other}:pull`],
      ['a push to the assigned repository', await v2(`${assigned}/blobs/uploads/`, { method: 'POST' }), `repository:${assigned}:pull,push`],
      ['the catalog', await v2('_catalog'), 'registry:catalog:*'],
    ];
    for (const [what, response, scope] of refusals) {
      const challenge = response.headers.get('www-authenticate') ?? '';
      t.true(
        challenge.startsWith('Bearer ') && challenge.includes(`scope="${scope}"`) && challenge.includes('error="insufficient_scope"'),
        `${what}: ${challenge}`,
      );
      await assertRegistryError(t, response, 401, 'UNAUTHORIZED');
    }

    // A second service on the node: the next token covers both of its repositories.
    await registry.admin('POST', '/stacks/tools', {
      compose: { services: { cli: { image: `${other}:main`, deploy: { replicas: 1 }, 'x-berth': { healthy_deadline: '3s' } } } },
    });
    await eventually(
      async () => node.assignments.length,
      (count) => count === 2,
    );
    const widened = (await (await node.call('pull-token', { method: 'POST' })).json()) as { token: string; repositories: string[] };
    t.deepEqual(widened.repositories, [assigned, other].sort());
    const otherManifest = await fetch(`${registry.url}/v2/${other}/manifests/main`, {
      headers: { Authorization: `Bearer ${widened.token}` },
    });
    t.is(otherManifest.status, 200, "the new token pulls the new service's repository");
    await otherManifest.arrayBuffer();

    const noCredential = await fetch(`${registry.url}/deploy/v1/node/pull-token`, { method: 'POST' });
    t.is(noCredential.status, 401, 'no token without a node credential');
    const wrongCredential = await fetch(`${registry.url}/deploy/v1/node/pull-token`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${node.credential.slice(0, -4)}AAAA` },
    });
    t.is(wrongCredential.status, 401, 'nor with a wrong one');

    await node.stop();
    await registry.admin('DELETE', '/nodes/n1');
    t.is((await node.call('pull-token', { method: 'POST' })).status, 401, 'a removed node gets no token');
    const afterRemoval = await v2(`${assigned}/manifests/${pushed.get(assigned)}`);
    t.regex(afterRemoval.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    await assertRegistryError(t, afterRemoval, 401, 'UNAUTHORIZED');
  },
);

test.serial(
  'a node taken for down keeps its global replica and, back, runs it on as it was; its replicated one moves and is not run twice; a rollout meanwhile completes without it, and it catches up on its return',
  async (t) => {
    const { registry, repository, nodes } = await registryWithNodes(t, ['n1', 'n2', 'n3']);
    const n1 = nodes[0]!;
    const check = { test: ['CMD', 'true'], interval: '100ms', timeout: '100ms', retries: 1 };
    const compose = {
      services: {
        edge: {
          image: `${repository}:main`,
          healthcheck: check,
          deploy: { mode: 'global', update_config: { monitor: '300ms' } },
          'x-berth': { track: 'main', healthy_deadline: '3s' },
        },
        // Two replicas over three nodes: one on n1, one on n2 (the spread's tie goes by name).
        worker: { image: `${repository}:main`, healthcheck: check, deploy: { replicas: 2, update_config: { monitor: '300ms' } } },
      },
    };
    t.is((await admin(registry, 'POST', 'stacks/shop', { compose })).status, 200);
    const succeeded = (state: ServiceStatus) => state.rollout?.status === 'succeeded';
    await eventually(() => status(registry, 'edge'), succeeded);
    const workers = await eventually(() => status(registry, 'worker'), succeeded);
    t.deepEqual(workers.replicas.map((replica) => replica.node).sort(), ['n1', 'n2']);
    const edgeOn = (state: ServiceStatus, node: string) => state.replicas.find((replica) => replica.node === node);
    const assignedTo = (node: SimulatedNode) => node.assignments.map((assignment) => `${assignment.replica}@${assignment.revision}`).sort();
    t.deepEqual(assignedTo(n1), ['shop/edge/n1@1', `shop/worker/${workers.replicas.find((r) => r.node === 'n1')!.slot}@1`]);

    const takenForDown = async () => {
      await n1.stop();
      await eventually(
        async () => (await admin(registry, 'GET', 'nodes')).body.nodes as Array<{ name: string; status: string }>,
        (listed) => listed.find((node) => node.name === 'n1')?.status === 'down',
      );
      const moved = await eventually(
        () => status(registry, 'worker'),
        (state) => state.replicas.length === 2 && state.replicas.every((replica) => replica.node !== 'n1' && replica.health === 'healthy'),
      );
      t.deepEqual(moved.replicas.map((replica) => replica.node).sort(), ['n2', 'n3'], "n1's worker replica went to n3");
    };

    // Down, then back, with nothing rolled out meanwhile: the same replica, on the same revision.
    await takenForDown();
    t.like(edgeOn(await status(registry, 'edge'), 'n1'), { slot: 'n1', revision: 1 }, 'the global replica stays on n1 while it is down');
    n1.start();
    const back = await eventually(
      async () => assignedTo(n1),
      (assigned) => !assigned.some((replica) => replica.startsWith('shop/worker/')),
    );
    t.deepEqual(back, ['shop/edge/n1@1'], 'back, n1 runs its global replica as it was, and no worker');
    const direct = await n1.call('assignments?version=0');
    t.deepEqual(
      ((await direct.json()) as { assignments: SimulatedAssignment[] }).assignments.map((assignment) => assignment.replica),
      ['shop/edge/n1'],
    );
    const workersBack = await status(registry, 'worker');
    t.deepEqual(workersBack.replicas.map((replica) => replica.node).sort(), ['n2', 'n3'], 'no worker replica runs twice');

    // Down again while a push rolls edge out: the rollout completes on the nodes that answer.
    await takenForDown();
    await pushImage(registry.url, repository, { tag: 'main' });
    const rolled = await eventually(
      () => status(registry, 'edge'),
      (state) => state.rollout?.revision === 2 && state.rollout.status !== 'rolling',
    );
    t.is(rolled.rollout?.status, 'succeeded', 'not held back, nor reverted, by the node that is down');
    t.deepEqual(
      rolled.replicas.map((replica) => `${replica.node}@${replica.revision}`).sort(),
      ['n1@1', 'n2@2', 'n3@2'],
      'n1 keeps its replica, on the revision it had',
    );
    n1.start();
    await eventually(
      async () => assignedTo(n1),
      (assigned) => assigned.length === 1 && assigned[0] === 'shop/edge/n1@2',
    );
    const caughtUp = await eventually(
      () => status(registry, 'edge'),
      (state) => edgeOn(state, 'n1')?.revision === 2 && edgeOn(state, 'n1')?.health === 'healthy',
    );
    t.is(caughtUp.replicas.length, 3);
    t.is((await status(registry, 'worker')).replicas.length, 2);
  },
);
