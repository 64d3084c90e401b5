import test from 'ava';
import bcrypt from 'bcryptjs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN, AuthRegistry, basic, type TokenResponse } from '../helpers/auth-registry.js';
import { request } from '../helpers/http-client.js';

let registry: AuthRegistry;
let workDir: string;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-auth-accounts-'));
  const htpasswd = path.join(workDir, 'htpasswd');
  await writeFile(htpasswd, `# made with htpasswd -B\ncarol:${bcrypt.hashSync('carol-password-1', 10).replace('$2b$', '$2y$')}\n`);
  registry = await AuthRegistry.start({ env: { BERTH_AUTH__HTPASSWD: htpasswd, BERTH_GC__ADMIN_API: 'true' } });
  await registry.grant('group:builders', 'apps/**', ['pull']);
});

test.after.always(async () => {
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

interface RobotListing {
  robots: Array<{ username: string; expiresAt?: string; lastUsedAt?: string; secret?: string }>;
}

test("a robot's secret is shown once; the listing shows its expiry and last use but never the secret", async (t) => {
  const robot = await registry.addRobot('lister', { groups: ['builders'], expiresAt: '2999-01-01T00:00:00Z' });
  t.is(robot.username, 'robot$lister');
  t.true(robot.password.length >= 40, 'a long random secret');
  const before = Date.now();
  t.is((await registry.tokenRequest(['repository:apps/web:pull'], robot)).status, 200);

  const listing = await registry.admin<RobotListing>('GET', '/robots');
  const entry = listing.robots.find((each) => each.username === 'robot$lister');
  t.is(entry?.expiresAt, '2999-01-01T00:00:00.000Z');
  t.true(Date.parse(entry?.lastUsedAt ?? '') >= before - 1000, 'last use recorded');
  t.false(JSON.stringify(listing).includes(robot.password));
});

test('an expired robot account cannot get a token', async (t) => {
  const robot = await registry.addRobot('expired', { groups: ['builders'], expiresAt: '2020-01-01T00:00:00Z' });
  t.is((await registry.tokenRequest(['repository:apps/web:pull'], robot)).status, 401);
});

test('a user from the htpasswd file logs in alongside the users kept in Redis', async (t) => {
  await registry.grant('user:carol', 'carol/**', ['pull', 'push']);
  const token = await registry.token(['repository:carol/tools:push'], { username: 'carol', password: 'carol-password-1' });
  t.deepEqual(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).access, [
    { type: 'repository', name: 'carol/tools', actions: ['push'] },
  ]);
  t.is((await registry.tokenRequest([], { username: 'carol', password: 'wrong-password' })).status, 401);
});

test('a deleted user can no longer log in, nor use the refresh token docker login stored', async (t) => {
  const dave = await registry.addUser('dave', 'dave-password-1');
  const login = await registry.tokenRequest([], dave, { offline_token: 'true', client_id: 'docker' });
  const { refresh_token: refreshToken } = (await login.json()) as TokenResponse;
  await registry.admin('DELETE', '/users/dave');
  t.is((await registry.tokenRequest([], dave)).status, 401);
  const refreshed = await request(registry.url, '/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken!, service: 'berth' }).toString(),
  });
  t.is(refreshed.status, 401);
});

test('the effective permissions of an account show the rules that reach it and what it may do on a repository', async (t) => {
  await registry.addUser('erin', 'erin-password-1', { groups: ['builders'] });
  await registry.grant('user:erin', 'apps/web', ['push']);
  await registry.grant('anonymous', 'apps/public-*', ['pull']);
  const effective = await registry.admin<{ rules: Array<{ subject: string }>; repository: { actions: string[] } }>(
    'GET',
    '/effective-permissions/erin?repository=apps/web',
  );
  t.deepEqual(effective.rules.map((rule) => rule.subject).sort(), ['anonymous', 'group:builders', 'user:erin']);
  t.deepEqual(effective.repository.actions, ['pull', 'push']);

  const { stdout } = await registry.cli(['permission', 'show', 'erin', '--repository', 'apps/other']);
  t.deepEqual(JSON.parse(stdout).repository, { name: 'apps/other', actions: ['pull'] });
});

test('the CLI creates a robot and prints its secret, lists and removes rules', async (t) => {
  const robot = JSON.parse((await registry.cli(['robot', 'add', 'deployer', '--group', 'builders'])).stdout) as {
    username: string;
    secret: string;
  };
  t.is(robot.username, 'robot$deployer');
  t.is((await registry.tokenRequest([], { username: robot.username, password: robot.secret })).status, 200);

  const rule = JSON.parse((await registry.cli(['permission', 'add', 'robot:deployer', 'deploy/**', 'pull'])).stdout) as { id: string };
  t.true((await registry.cli(['permission', 'list'])).stdout.includes(rule.id));
  await registry.cli(['permission', 'remove', rule.id]);
  t.false((await registry.cli(['permission', 'list'])).stdout.includes(rule.id));
  const missing = await registry.cli(['permission', 'remove', rule.id], { allowFailure: true });
  t.is(missing.code, 1);
  t.is(missing.stderr, 'berth: no such entry\n');
});

test('a rule that would let anonymous users push is refused', async (t) => {
  const response = await request(registry.url, '/admin/v1/permissions', {
    method: 'POST',
    headers: { Authorization: basic(ADMIN), 'Content-Type': 'application/json' },
    body: JSON.stringify({ subject: 'anonymous', repositories: '**', actions: ['push'] }),
  });
  t.is(response.status, 400);
  t.regex(await response.text(), /anonymous rules may only grant pull/);
});

test('the admin API wants admin credentials on every admin route: 401 without any, 403 for a non-admin; a path no route serves is 404', async (t) => {
  const anonymous = await request(registry.url, '/admin/v1/users');
  t.is(anonymous.status, 401);
  t.is(anonymous.headers.get('www-authenticate'), 'Basic realm="berth-admin"');
  await registry.addUser('frank', 'frank-password-1');
  const frank = await request(registry.url, '/admin/v1/users', {
    headers: { Authorization: basic({ username: 'frank', password: 'frank-password-1' }) },
  });
  t.is(frank.status, 403);
  const gc = await request(registry.url, '/admin/v1/gc?dryRun=true', { method: 'POST' });
  t.is(gc.status, 401, 'every admin route, garbage collection included');
  const unknown = await request(registry.url, '/admin/v1/nothing');
  t.is(unknown.status, 404);
  t.is(((await unknown.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'UNSUPPORTED');
});

test('the admin API also takes a Bearer token issued to an admin, and refuses one of a non-admin, a refresh token or a forged one', async (t) => {
  const call = (authorization: string) => request(registry.url, '/admin/v1/users', { headers: { Authorization: authorization } });
  const adminToken = await registry.token([], ADMIN);
  const listed = await call(`Bearer ${adminToken}`);
  t.is(listed.status, 200);
  t.true(((await listed.json()) as { users: Array<{ name: string }> }).users.some((user) => user.name === 'admin'));

  const gina = await registry.addUser('gina', 'gina-password-1');
  const denied = await call(`Bearer ${await registry.token([], gina)}`);
  t.is(denied.status, 403);

  const login = await registry.tokenRequest([], ADMIN, { offline_token: 'true', client_id: 'test' });
  const { refresh_token: refreshToken } = (await login.json()) as TokenResponse;
  for (const [what, authorization] of Object.entries({
    'refresh token': `Bearer ${refreshToken!}`,
    garbage: 'Bearer not.a.token',
    'tampered token': `Bearer ${adminToken.slice(0, -4)}AAAA`,
  })) {
    const response = await call(authorization);
    t.is(response.status, 401, what);
    t.is(response.headers.get('www-authenticate'), 'Basic realm="berth-admin"', what);
  }

  // The role is looked up on every call: an admin demoted keeps a valid token but loses the admin API.
  const hank = await registry.addUser('hank', 'hank-password-1', { admin: true });
  const hankToken = await registry.token([], hank);
  t.is((await call(`Bearer ${hankToken}`)).status, 200);
  await registry.admin('PUT', '/users/hank', { password: hank.password, admin: false });
  t.is((await call(`Bearer ${hankToken}`)).status, 403);
});
