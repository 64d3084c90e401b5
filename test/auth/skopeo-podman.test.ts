import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AuthRegistry, type Credentials } from '../helpers/auth-registry.js';
import { run, type RunResult } from '../helpers/exec.js';
import { PodmanEnvironment } from '../helpers/podman.js';
import { buildTestImage, createBusyboxRootfsTarball, imageBlobs, writeOciLayout } from '../helpers/test-images.js';

let registry: AuthRegistry;
let podman: PodmanEnvironment;
let workDir: string;
let dana: Credentials;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-auth-skopeo-podman-'));
  await Promise.all([
    AuthRegistry.start().then((started) => (registry = started)),
    PodmanEnvironment.create().then((created) => (podman = created)),
  ]);
  dana = await registry.addUser('dana', 'dana-password-1', { groups: ['team-c'] });
  await registry.grant('group:team-c', 'team-c/**', ['pull', 'push']);
});

test.after.always(async () => {
  await podman?.destroy();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

function skopeo(args: readonly string[]): Promise<RunResult> {
  return run('skopeo', ['--insecure-policy', ...args], { allowFailure: true });
}

test('skopeo pushes to and inspects a private repository with --creds, and is refused without them or with a wrong password', async (t) => {
  const layout = path.join(workDir, 'layout');
  const image = await buildTestImage(workDir, { format: 'oci', layers: [{ 'hello.txt': 'skopeo with credentials\n' }] });
  await writeOciLayout(layout, 'v1', image.manifest, imageBlobs(image));
  const target = `docker://${registry.host}/team-c/skopeo:v1`;
  const creds = `${dana.username}:${dana.password}`;

  const pushed = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:v1`, target]);
  t.is(pushed.code, 0, pushed.stderr);
  const inspected = await skopeo(['inspect', '--tls-verify=false', '--creds', creds, target]);
  t.is(inspected.code, 0, inspected.stderr);
  t.is((JSON.parse(inspected.stdout) as { Digest: string }).Digest, image.manifest.digest);

  const anonymous = await skopeo(['inspect', '--tls-verify=false', target]);
  t.not(anonymous.code, 0);
  t.regex(anonymous.stderr, /unauthorized|authentication required/);
  const wrong = await skopeo(['inspect', '--tls-verify=false', '--creds', `${dana.username}:wrong-password`, target]);
  t.not(wrong.code, 0);
});

test('podman logs in, pushes and pulls; after podman logout the pull is refused', async (t) => {
  const reference = `${registry.host}/team-c/podman:v1`;
  const tarball = await createBusyboxRootfsTarball(workDir, 'podman-auth');
  await podman.podman(['import', '--change', 'CMD ["/bin/sh"]', tarball, reference]);
  const authFile = path.join(workDir, 'podman-auth.json');
  const inPodman = (args: string[], input?: string) => podman.podman(args, { allowFailure: true, input, env: { REGISTRY_AUTH_FILE: authFile } });

  const login = await inPodman(['login', '--tls-verify=false', '--username', dana.username, '--password-stdin', registry.host], dana.password);
  t.is(login.code, 0, login.stderr);
  t.is((await inPodman(['push', '--tls-verify=false', reference])).code, 0);
  await inPodman(['rmi', reference]);
  const pulled = await inPodman(['pull', '--tls-verify=false', reference]);
  t.is(pulled.code, 0, pulled.stderr);

  t.is((await inPodman(['logout', registry.host])).code, 0);
  await inPodman(['rmi', reference]);
  const refused = await inPodman(['pull', '--tls-verify=false', reference]);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /unauthorized|authentication required/);
});
