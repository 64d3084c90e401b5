import test, { type ExecutionContext } from 'ava';
import { ADMIN, AuthRegistry, basic, pushImageWithToken, type Credentials } from '../helpers/auth-registry.js';
import { assertRegistryError, request } from '../helpers/http-client.js';

let registry: AuthRegistry;
let adminToken: (scopes: string[]) => Promise<string>;
let alice: Credentials;
let bob: Credentials;

test.before(async () => {
  registry = await AuthRegistry.start();
  alice = await registry.addUser('alice', 'alice-password-1', { groups: ['team-a'] });
  bob = await registry.addUser('bob', 'bob-password-1');
  await registry.grant('group:team-a', 'team-a/**', ['pull', 'push']);
  await registry.grant('user:bob', 'team-b/**', ['*']);
  await registry.grant('anonymous', '*/public-*', ['pull']);
  adminToken = (scopes) => registry.token(scopes, { username: 'admin', password: 'admin-password-1' });
  const pushAll = await adminToken(['repository:team-a/app:pull,push', 'repository:team-a/public-tools:pull,push']);
  await pushImageWithToken(registry.url, pushAll, 'team-a/app', 'v1');
  await pushImageWithToken(registry.url, pushAll, 'team-a/public-tools', 'v1');
});

test.after.always(async () => {
  await registry?.destroy();
});

function get(path: string, token?: string, init: { method?: string } = {}): Promise<Response> {
  return request(registry.url, path, { ...init, headers: token ? { Authorization: `Bearer ${token}` } : {} });
}

async function assertChallenge(t: ExecutionContext, response: Response, scope: string | undefined, error?: string): Promise<void> {
  const expected = [
    `Bearer realm="${registry.url}/token"`,
    'service="berth"',
    ...(scope ? [`scope="${scope}"`] : []),
    ...(error ? [`error="${error}"`] : []),
  ];
  t.is(response.headers.get('www-authenticate'), expected.join(','));
  await assertRegistryError(t, response, 401, 'UNAUTHORIZED');
}

test('the version check without a token answers 401 with a challenge naming the token realm and service', async (t) => {
  await assertChallenge(t, await get('/v2/'), undefined);
  t.is((await get('/v2/', await registry.token([]))).status, 200, 'any valid token, even an anonymous one, passes it');
});

test('a pull without a token answers 401 with a challenge naming the repository and action', async (t) => {
  await assertChallenge(t, await get('/v2/team-a/app/manifests/v1'), 'repository:team-a/app:pull');
});

test('anonymous pull of a public repository works; anonymous push to it is challenged for pull,push', async (t) => {
  const token = await registry.token(['repository:team-a/public-tools:pull,push']);
  t.is((await get('/v2/team-a/public-tools/manifests/v1', token)).status, 200);
  await assertChallenge(
    t,
    await get('/v2/team-a/public-tools/blobs/uploads/', token, { method: 'POST' }),
    'repository:team-a/public-tools:pull,push',
    'insufficient_scope',
  );
});

test('anonymous pull of a private repository is challenged, never answered', async (t) => {
  const token = await registry.token(['repository:team-a/app:pull']);
  await assertChallenge(t, await get('/v2/team-a/app/manifests/v1', token), 'repository:team-a/app:pull', 'insufficient_scope');
});

test("a token for repository A used on repository B gets 401 naming B's scope, and a token for B then works", async (t) => {
  const forA = await registry.token(['repository:team-a/app:pull'], alice);
  await assertChallenge(
    t,
    await get('/v2/team-a/public-tools/manifests/v1', forA),
    'repository:team-a/public-tools:pull',
    'insufficient_scope',
  );
  const forB = await registry.token(['repository:team-a/public-tools:pull'], alice);
  t.is((await get('/v2/team-a/public-tools/manifests/v1', forB)).status, 200);
});

test('a logged-in account pushing where no rule lets it gets 403 DENIED, not a challenge', async (t) => {
  const token = await registry.token(['repository:team-a/app:pull,push'], bob);
  const response = await get('/v2/team-a/app/blobs/uploads/', token, { method: 'POST' });
  await assertRegistryError(t, response, 403, 'DENIED');
  t.is(response.headers.get('www-authenticate'), null);
});

test('deleting needs the delete action', async (t) => {
  const token = await registry.token(['repository:team-a/app:pull,push,delete'], alice);
  await assertRegistryError(t, await get('/v2/team-a/app/manifests/v1', token, { method: 'DELETE' }), 403, 'DENIED');
});

test('the catalog needs registry:catalog:*, which only admins get', async (t) => {
  await assertChallenge(t, await get('/v2/_catalog'), 'registry:catalog:*');
  await assertRegistryError(t, await get('/v2/_catalog', await registry.token(['registry:catalog:*'], alice)), 403, 'DENIED');
  const response = await get('/v2/_catalog', await adminToken(['registry:catalog:*']));
  t.is(response.status, 200);
  const { repositories } = (await response.json()) as { repositories: string[] };
  t.true(repositories.includes('team-a/app') && repositories.includes('team-a/public-tools'), repositories.join());
});

test('a cross-repository mount without pull on the source falls back to a normal upload; with it, the blob is mounted', async (t) => {
  const adminPush = await adminToken(['repository:team-a/secret:pull,push']);
  const { blob } = await pushImageWithToken(registry.url, adminPush, 'team-a/secret', 'v1');
  const mount = (token: string) => get(`/v2/team-b/copy/blobs/uploads/?mount=${blob.digest}&from=team-a/secret`, token, { method: 'POST' });

  const bobToken = await registry.token(['repository:team-b/copy:pull,push', 'repository:team-a/secret:pull'], bob);
  const fallback = await mount(bobToken);
  t.is(fallback.status, 202, 'an upload session instead of the mount');
  t.regex(fallback.headers.get('location') ?? '', /^\/v2\/team-b\/copy\/blobs\/uploads\//);
  t.is((await get(`/v2/team-b/copy/blobs/${blob.digest}`, bobToken, { method: 'HEAD' })).status, 404, 'bob did not get the blob');

  await registry.grant('user:bob', 'team-a/secret', ['pull']);
  const mounted = await mount(await registry.token(['repository:team-b/copy:pull,push', 'repository:team-a/secret:pull'], bob));
  t.is(mounted.status, 201);
  t.is(mounted.headers.get('docker-content-digest'), blob.digest);
});

test('a group member pushes with a token for the group pattern, and pulls what it pushed', async (t) => {
  const token = await registry.token(['repository:team-a/new:pull,push'], alice);
  const { manifest } = await pushImageWithToken(registry.url, token, 'team-a/new', 'v1');
  const pulled = await get('/v2/team-a/new/manifests/v1', token);
  t.is(pulled.headers.get('docker-content-digest'), manifest.digest);
});

test('a catalog rule lets a non-admin list the catalog: only the repositories it matches and the account may pull, in full pages', async (t) => {
  const push = await adminToken(
    ['cat/a-open', 'cat/b-closed', 'cat/c-open', 'cat/d-closed', 'cat/e-open'].map((name) => `repository:${name}:pull,push`),
  );
  for (const name of ['cat/a-open', 'cat/b-closed', 'cat/c-open', 'cat/d-closed', 'cat/e-open'])
    await pushImageWithToken(registry.url, push, name, 'v1');
  const carl = await registry.addUser('carl', 'carl-password-1', { groups: ['auditors'] });
  await registry.grant('group:auditors', 'cat/**', ['catalog']);
  await registry.grant('group:auditors', 'cat/*-open', ['pull']);
  await registry.grant('user:carl', 'team-a/app', ['pull']);

  const token = await registry.token(['registry:catalog:*'], carl);
  const catalog = async (query: string) => {
    const response = await get(`/v2/_catalog${query}`, token);
    t.is(response.status, 200);
    return { repositories: ((await response.json()) as { repositories: string[] }).repositories, link: response.headers.get('link') };
  };
  t.deepEqual(
    await catalog(''),
    { repositories: ['cat/a-open', 'cat/c-open', 'cat/e-open'], link: null },
    'team-a/app is pullable but no catalog rule matches it',
  );
  const first = await catalog('?n=2');
  t.deepEqual(first, { repositories: ['cat/a-open', 'cat/c-open'], link: '</v2/_catalog?n=2&last=cat%2Fc-open>; rel="next"' });
  t.deepEqual(await catalog('?n=2&last=cat%2Fc-open'), { repositories: ['cat/e-open'], link: null });
  t.deepEqual(
    await catalog('?n=3'),
    { repositories: ['cat/a-open', 'cat/c-open', 'cat/e-open'], link: null },
    'no next link when nothing visible follows',
  );

  const effective = await registry.admin<{ catalog: boolean }>('GET', '/effective-permissions/carl');
  t.true(effective.catalog);
  const rejected = await request(registry.url, '/admin/v1/permissions', {
    method: 'POST',
    headers: { Authorization: basic(ADMIN), 'Content-Type': 'application/json' },
    body: JSON.stringify({ subject: 'anonymous', repositories: '**', actions: ['catalog'] }),
  });
  t.is(rejected.status, 400, 'anonymous rules may only grant pull');
});
