import test from 'ava';
import { mkdtemp, readFile } from 'node:fs/promises';
import path from 'node:path';
import { dockerTestbed } from '../helpers/client-testbed.js';
import { ADMIN, AuthRegistry, type Credentials, type TokenResponse } from '../helpers/auth-registry.js';
import { DockerWorkbench } from '../helpers/docker-workbench.js';
import type { RunResult } from '../helpers/exec.js';
import { request } from '../helpers/http-client.js';
import { RecordingProxy } from '../helpers/recording-proxy.js';

// One dockerd and one registry for the file. Each test logs in with its own docker client config
// (DOCKER_CONFIG), so the tests' logins never see each other and the tests can run at once.
const bed = dockerTestbed('auth-docker', () => AuthRegistry.start());
let images: DockerWorkbench;

test.before(async () => {
  images = new DockerWorkbench(bed.client, bed.workDir);
  await bed.registry.grant('group:team-a', 'team-a/**', ['pull', 'push']);
  await bed.registry.grant('group:readers', 'team-a/**', ['pull']);
  await bed.registry.grant('anonymous', '*/public-*', ['pull']);
});

/** The docker CLI with a client config of its own: its own logins and identity tokens. */
async function dockerClient(host = bed.registry.host) {
  const config = await mkdtemp(path.join(bed.workDir, 'client-'));
  const docker = (args: string[], input?: string): Promise<RunResult> =>
    bed.client.docker(args, { env: { DOCKER_CONFIG: config }, allowFailure: true, input });
  return {
    docker,
    config,
    login: (credentials: Credentials) =>
      docker(['login', '--username', credentials.username, '--password-stdin', host], credentials.password),
  };
}

/** A busybox image tagged `reference` in the daemon, with content of its own. */
async function localImage(name: string, reference: string): Promise<void> {
  const base = await images.importBusybox(name);
  await images.build(reference, [`FROM ${base}`, `RUN echo ${name} > /name.txt`].join('\n'));
}

test('a user logs in with docker login, pushes and pulls; after docker logout a pull of the private repository is refused', async (t) => {
  const alice = await bed.registry.addUser('alice', 'alice-password-1', { groups: ['team-a'] });
  const client = await dockerClient();
  const reference = `${bed.registry.host}/team-a/app:v1`;
  await localImage('login', reference);

  const login = await client.login(alice);
  t.is(login.code, 0, login.stderr);
  t.regex(login.stdout, /Login Succeeded/);
  t.is((await client.docker(['push', reference])).code, 0);
  await images.removeLocally(reference);
  const pulled = await client.docker(['pull', reference]);
  t.is(pulled.code, 0, pulled.stderr);

  t.is((await client.docker(['logout', bed.registry.host])).code, 0);
  await images.removeLocally(reference);
  const refused = await client.docker(['pull', reference]);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /pull access denied|unauthorized|authentication required/);
});

test('a robot account pulls but cannot push, and an expired robot cannot log in', async (t) => {
  const reference = `${bed.registry.host}/team-a/robot-app:v1`;
  await localImage('robot', reference);
  const admin = await dockerClient();
  t.is((await admin.login(ADMIN)).code, 0);
  t.is((await admin.docker(['push', reference])).code, 0);
  await images.removeLocally(reference);

  const robot = await bed.registry.addRobot('puller', { groups: ['readers'] });
  const ci = await dockerClient();
  t.is((await ci.login(robot)).code, 0);
  const pulled = await ci.docker(['pull', reference]);
  t.is(pulled.code, 0, pulled.stderr);
  await ci.docker(['tag', reference, `${bed.registry.host}/team-a/robot-app:v2`]);
  const pushed = await ci.docker(['push', `${bed.registry.host}/team-a/robot-app:v2`]);
  t.not(pushed.code, 0);
  t.regex(pushed.stderr, /^denied/m);

  const expired = await bed.registry.addRobot('retired', { groups: ['readers'], expiresAt: new Date(Date.now() - 1000).toISOString() });
  const refused = await (await dockerClient()).login(expired);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /unauthorized|401/);
});

test('anonymous pull of a public repository works, and an anonymous push to it is refused', async (t) => {
  const reference = `${bed.registry.host}/team-a/public-tools:v1`;
  await localImage('public', reference);
  const admin = await dockerClient();
  await admin.login(ADMIN);
  t.is((await admin.docker(['push', reference])).code, 0);
  await images.removeLocally(reference);

  const anonymous = await dockerClient();
  const pulled = await anonymous.docker(['pull', reference]);
  t.is(pulled.code, 0, pulled.stderr);
  const pushed = await anonymous.docker(['push', reference]);
  t.not(pushed.code, 0);
  t.regex(pushed.stderr, /^unauthorized: authentication required$/m);
});

test('docker, logged in once, fetches a token for each repository by itself: a push that mounts from another repository, and pulls of both', async (t) => {
  const bea = await bed.registry.addUser('bea', 'bea-password-1', { groups: ['team-a'] });
  const client = await dockerClient();
  await client.login(bea);
  const first = `${bed.registry.host}/team-a/first:v1`;
  const second = `${bed.registry.host}/team-a/second:v1`;
  await localImage('moving', first);
  t.is((await client.docker(['push', first])).code, 0);
  await client.docker(['tag', first, second]);
  // Pushing the second repository mounts the layers from the first: a token for both.
  const pushed = await client.docker(['push', second]);
  t.is(pushed.code, 0, pushed.stderr);
  t.regex(pushed.stdout, /Mounted from team-a\/first/);
  await images.removeLocally(first, second);
  t.is((await client.docker(['pull', first])).code, 0);
  t.is((await client.docker(['pull', second])).code, 0);
});

test('docker, logged in once, pushes to A and then pulls B: challenged, it buys a token for B with its stored refresh token, no re-login', async (t) => {
  // Everything docker says to the registry goes through a recording proxy; the challenge's realm names the proxy.
  const proxy = await RecordingProxy.start(bed.registry.url);
  t.teardown(() => proxy.close());
  const dana = await bed.registry.addUser('dana', 'dana-password-1', { groups: ['team-a'] });
  const a = `${proxy.host}/team-a/repo-a:v1`;
  const b = `${proxy.host}/team-a/repo-b:v1`;
  await localImage('repo-b', b);
  const admin = await dockerClient(proxy.host);
  t.is((await admin.login(ADMIN)).code, 0);
  t.is((await admin.docker(['push', b])).code, 0);
  await images.removeLocally(b);
  await localImage('repo-a', a);

  const client = await dockerClient(proxy.host);
  const login = await client.login(dana);
  t.is(login.code, 0, login.stderr);
  const stored = await readFile(path.join(client.config, 'config.json'), 'utf8');
  t.false(stored.includes('dana-password-1'), 'docker login kept a refresh token, not the password');
  const pushed = await client.docker(['push', a]);
  t.is(pushed.code, 0, pushed.stderr);

  proxy.take();
  const pulled = await client.docker(['pull', b]);
  t.is(pulled.code, 0, pulled.stderr);
  const exchanges = proxy.take();
  const trace = exchanges
    .map((each) => `${each.method} ${each.url} ${each.authorization ?? '-'} -> ${each.status} ${each.challenge ?? ''}`)
    .join('\n');

  // Docker's first unauthorised request is challenged; it answers by asking the token service for B's scope,
  // with the refresh token docker login stored (no password: no re-login), and then pulls with that token.
  const challenged = exchanges.findIndex((each) => each.status === 401 && /^Bearer realm=/.test(each.challenge ?? ''));
  t.true(challenged >= 0, trace);
  t.regex(exchanges[challenged]!.challenge!, new RegExp(`realm="http://${proxy.host}/token",service="berth"`), trace);
  const tokenRequest = exchanges.findIndex(
    (each, index) => index > challenged && each.token?.scopes.includes('repository:team-a/repo-b:pull'),
  );
  t.true(tokenRequest > challenged, trace);
  t.is(exchanges[tokenRequest]!.status, 200, trace);
  t.is(exchanges[tokenRequest]!.token?.grant, 'refresh_token', trace);
  t.false(
    exchanges.some((each) => each.token?.grant === 'password' || each.token?.grant === 'basic'),
    `no password sent again:\n${trace}`,
  );
  const manifest = exchanges.find((each, index) => index > tokenRequest && /^\/v2\/team-a\/repo-b\/manifests\//.test(each.url));
  t.like(manifest, { authorization: 'Bearer', status: 200 }, trace);

  // dockerd fetches a token per repository as soon as it is challenged (above: by the version check, which
  // names no repository), so it never itself presents A's token to B. What it would get if it did, and that
  // the refresh token it stored recovers from it: a token for A on B is challenged with B's scope, and that
  // scope bought with docker's stored refresh token is accepted.
  const { auths } = JSON.parse(stored) as { auths: Record<string, { identitytoken?: string }> };
  const refreshToken = auths[proxy.host]?.identitytoken;
  t.truthy(refreshToken, 'docker stored the refresh token as its identity token');
  const tokenFor = async (scope: string): Promise<string> => {
    const response = await request(bed.registry.url, '/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refreshToken!,
        service: 'berth',
        client_id: 'docker',
        scope,
      }).toString(),
    });
    t.is(response.status, 200);
    return ((await response.json()) as TokenResponse).token;
  };
  const manifestOfB = (token: string) =>
    request(bed.registry.url, '/v2/team-a/repo-b/manifests/v1', { headers: { Authorization: `Bearer ${token}` } });
  const withTokenForA = await manifestOfB(await tokenFor('repository:team-a/repo-a:pull'));
  t.is(withTokenForA.status, 401);
  const scope = /scope="([^"]+)"/.exec(withTokenForA.headers.get('www-authenticate') ?? '')?.[1];
  t.is(scope, 'repository:team-a/repo-b:pull');
  t.is((await manifestOfB(await tokenFor(scope!))).status, 200);
});
