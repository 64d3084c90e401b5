import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PodmanEnvironment } from '../helpers/podman.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { createBusyboxRootfsTarball } from '../helpers/test-images.js';

let registry: RegistryProcess;
let podman: PodmanEnvironment;
let workDir: string;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-podman-test-'));
  // Each is assigned as soon as it exists, so that test.after.always cleans it up even if the other fails.
  await Promise.all([
    RegistryProcess.start().then((started) => (registry = started)),
    PodmanEnvironment.create().then((created) => (podman = created)),
  ]);
});

test.after.always(async () => {
  await podman?.destroy();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function imageField(reference: string, format: string): Promise<string> {
  return (await podman.podman(['image', 'inspect', '--format', format, reference])).stdout.trim();
}

test('an image pushed with podman push, removed and pulled back has the same digest and image ID, and runs', async (t) => {
  const reference = `${registry.host}/clients/podman:v1`;
  const tarball = await createBusyboxRootfsTarball(workDir, 'podman');
  await podman.podman(['import', '--change', 'ENV PATH=/bin', '--change', 'CMD ["cat", "/etc/image-name"]', tarball, reference]);
  const imageId = await imageField(reference, '{{.Id}}');

  const digestFile = path.join(workDir, 'pushed-digest');
  await podman.podman(['push', '--tls-verify=false', '--digestfile', digestFile, reference]);
  const pushedDigest = (await readFile(digestFile, 'utf8')).trim();
  t.regex(pushedDigest, /^sha256:[0-9a-f]{64}$/);

  await podman.podman(['rmi', reference]);
  t.is((await podman.podman(['image', 'exists', reference], { allowFailure: true })).code, 1, 'the image is gone locally');

  const pulled = await podman.podman(['pull', '--tls-verify=false', reference]);
  t.is(pulled.stdout.trim(), imageId.replace(/^sha256:/, ''), 'podman pull prints the ID of the image that was pushed');
  t.is(await imageField(reference, '{{.Id}}'), imageId);
  t.is(await imageField(reference, '{{.Digest}}'), pushedDigest);

  const { stdout } = await podman.podman(['run', '--rm', '--network', 'none', reference]);
  t.is(stdout, 'podman\n');
});
