import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN, AuthRegistry, type Credentials } from '../helpers/auth-registry.js';
import { DockerWorkbench } from '../helpers/docker-workbench.js';
import { DockerDaemon } from '../helpers/dockerd.js';
import type { RunResult } from '../helpers/exec.js';

// One dockerd and one registry for the file. Each test logs in with its own docker client config
// (DOCKER_CONFIG), so the tests' logins never see each other and the tests can run at once.
let registry: AuthRegistry;
let daemon: DockerDaemon;
let workDir: string;
let images: DockerWorkbench;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-auth-docker-'));
  await Promise.all([
    AuthRegistry.start().then((started) => (registry = started)),
    DockerDaemon.start().then((started) => (daemon = started)),
  ]);
  images = new DockerWorkbench(daemon, workDir);
  await registry.grant('group:team-a', 'team-a/**', ['pull', 'push']);
  await registry.grant('group:readers', 'team-a/**', ['pull']);
  await registry.grant('anonymous', '*/public-*', ['pull']);
});

test.after.always(async () => {
  await daemon?.stop();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** The docker CLI with a client config of its own: its own logins and identity tokens. */
async function dockerClient() {
  const config = await mkdtemp(path.join(workDir, 'client-'));
  const docker = (args: string[], input?: string): Promise<RunResult> => daemon.docker(args, { env: { DOCKER_CONFIG: config }, allowFailure: true, input });
  return {
    docker,
    login: (credentials: Credentials) => docker(['login', '--username', credentials.username, '--password-stdin', registry.host], credentials.password),
  };
}

/** A busybox image tagged `reference` in the daemon, with content of its own. */
async function localImage(name: string, reference: string): Promise<void> {
  const base = await images.importBusybox(name);
  await images.build(reference, [`FROM ${base}`, `RUN echo ${name} > /name.txt`].join('\n'));
}

test('a user logs in with docker login, pushes and pulls; after docker logout a pull of the private repository is refused', async (t) => {
  const alice = await registry.addUser('alice', 'alice-password-1', { groups: ['team-a'] });
  const client = await dockerClient();
  const reference = `${registry.host}/team-a/app:v1`;
  await localImage('login', reference);

  const login = await client.login(alice);
  t.is(login.code, 0, login.stderr);
  t.regex(login.stdout, /Login Succeeded/);
  t.is((await client.docker(['push', reference])).code, 0);
  await images.removeLocally(reference);
  const pulled = await client.docker(['pull', reference]);
  t.is(pulled.code, 0, pulled.stderr);

  t.is((await client.docker(['logout', registry.host])).code, 0);
  await images.removeLocally(reference);
  const refused = await client.docker(['pull', reference]);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /pull access denied|unauthorized|authentication required/);
});

test('a robot account pulls but cannot push, and an expired robot cannot log in', async (t) => {
  const reference = `${registry.host}/team-a/robot-app:v1`;
  await localImage('robot', reference);
  const admin = await dockerClient();
  t.is((await admin.login(ADMIN)).code, 0);
  t.is((await admin.docker(['push', reference])).code, 0);
  await images.removeLocally(reference);

  const robot = await registry.addRobot('puller', { groups: ['readers'] });
  const ci = await dockerClient();
  t.is((await ci.login(robot)).code, 0);
  const pulled = await ci.docker(['pull', reference]);
  t.is(pulled.code, 0, pulled.stderr);
  await ci.docker(['tag', reference, `${registry.host}/team-a/robot-app:v2`]);
  const pushed = await ci.docker(['push', `${registry.host}/team-a/robot-app:v2`]);
  t.not(pushed.code, 0);
  t.regex(pushed.stderr, /^denied/m);

  const expired = await registry.addRobot('retired', { groups: ['readers'], expiresAt: new Date(Date.now() - 1000).toISOString() });
  const refused = await (await dockerClient()).login(expired);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /unauthorized|401/);
});

test('anonymous pull of a public repository works, and an anonymous push to it is refused', async (t) => {
  const reference = `${registry.host}/team-a/public-tools:v1`;
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
  const bea = await registry.addUser('bea', 'bea-password-1', { groups: ['team-a'] });
  const client = await dockerClient();
  await client.login(bea);
  const first = `${registry.host}/team-a/first:v1`;
  const second = `${registry.host}/team-a/second:v1`;
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
