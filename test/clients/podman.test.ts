import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { podmanTestbed } from '../helpers/client-testbed.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { createBusyboxRootfsTarball } from '../helpers/test-images.js';

const bed = podmanTestbed('podman-test', () => RegistryProcess.start());

async function imageField(reference: string, format: string): Promise<string> {
  return (await bed.client.podman(['image', 'inspect', '--format', format, reference])).stdout.trim();
}

test('an image pushed with podman push, removed and pulled back has the same digest and image ID, and runs', async (t) => {
  const reference = `${bed.registry.host}/clients/podman:v1`;
  const tarball = await createBusyboxRootfsTarball(bed.workDir, 'podman');
  await bed.client.podman(['import', '--change', 'ENV PATH=/bin', '--change', 'CMD ["cat", "/etc/image-name"]', tarball, reference]);
  const imageId = await imageField(reference, '{{.Id}}');

  const digestFile = path.join(bed.workDir, 'pushed-digest');
  await bed.client.podman(['push', '--tls-verify=false', '--digestfile', digestFile, reference]);
  const pushedDigest = (await readFile(digestFile, 'utf8')).trim();
  t.regex(pushedDigest, /^sha256:[0-9a-f]{64}$/);

  await bed.client.podman(['rmi', reference]);
  t.is((await bed.client.podman(['image', 'exists', reference], { allowFailure: true })).code, 1, 'the image is gone locally');

  const pulled = await bed.client.podman(['pull', '--tls-verify=false', reference]);
  t.is(pulled.stdout.trim(), imageId.replace(/^sha256:/, ''), 'podman pull prints the ID of the image that was pushed');
  t.is(await imageField(reference, '{{.Id}}'), imageId);
  t.is(await imageField(reference, '{{.Digest}}'), pushedDigest);

  const { stdout } = await bed.client.podman(['run', '--rm', '--network', 'none', reference]);
  t.is(stdout, 'podman\n');
});
