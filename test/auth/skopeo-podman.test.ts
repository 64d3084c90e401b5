import test from 'ava';
import path from 'node:path';
import { podmanTestbed } from '../helpers/client-testbed.js';
import { AuthRegistry, type Credentials } from '../helpers/auth-registry.js';
import { run, type RunResult } from '../helpers/exec.js';
import { buildTestImage, createBusyboxRootfsTarball, imageBlobs, writeOciLayout } from '../helpers/test-images.js';

const bed = podmanTestbed('auth-skopeo-podman', () => AuthRegistry.start());
let dana: Credentials;

test.before(async () => {
  dana = await bed.registry.addUser('dana', 'dana-password-1', { groups: ['team-c'] });
  await bed.registry.grant('group:team-c', 'team-c/**', ['pull', 'push']);
});

function skopeo(args: readonly string[]): Promise<RunResult> {
  return run('skopeo', ['--insecure-policy', ...args], { allowFailure: true });
}

test('skopeo pushes to and inspects a private repository with --creds, and is refused without them or with a wrong password', async (t) => {
  const layout = path.join(bed.workDir, 'layout');
  const image = await buildTestImage(bed.workDir, { format: 'oci', layers: [{ 'hello.txt': 'skopeo with credentials\n' }] });
  await writeOciLayout(layout, 'v1', image.manifest, imageBlobs(image));
  const target = `docker://${bed.registry.host}/team-c/skopeo:v1`;
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
  const reference = `${bed.registry.host}/team-c/podman:v1`;
  const tarball = await createBusyboxRootfsTarball(bed.workDir, 'podman-auth');
  await bed.client.podman(['import', '--change', 'CMD ["/bin/sh"]', tarball, reference]);
  const authFile = path.join(bed.workDir, 'podman-auth.json');
  const inPodman = (args: string[], input?: string) =>
    bed.client.podman(args, { allowFailure: true, input, env: { REGISTRY_AUTH_FILE: authFile } });

  const login = await inPodman(
    ['login', '--tls-verify=false', '--username', dana.username, '--password-stdin', bed.registry.host],
    dana.password,
  );
  t.is(login.code, 0, login.stderr);
  t.is((await inPodman(['push', '--tls-verify=false', reference])).code, 0);
  await inPodman(['rmi', reference]);
  const pulled = await inPodman(['pull', '--tls-verify=false', reference]);
  t.is(pulled.code, 0, pulled.stderr);

  t.is((await inPodman(['logout', bed.registry.host])).code, 0);
  await inPodman(['rmi', reference]);
  const refused = await inPodman(['pull', '--tls-verify=false', reference]);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /unauthorized|authentication required/);
});
