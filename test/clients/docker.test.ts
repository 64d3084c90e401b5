import test from 'ava';
import { dockerTestbed } from '../helpers/client-testbed.js';
import { assertPushRemovePull, DockerWorkbench } from '../helpers/docker-workbench.js';
import { RegistryProcess } from '../helpers/registry-process.js';

// One dockerd and one registry for the file. Every test builds on its own busybox base and puts test-specific
// content in every layer, so concurrent tests share no layer: "Layer already exists" and "Mounted from" seen by
// one test can only come from its own pushes.
const bed = dockerTestbed('docker-test', () => RegistryProcess.start());
let images: DockerWorkbench;

test.before(async () => {
  images = new DockerWorkbench(bed.client, bed.workDir);
});

test('a multi-layer image pushed with docker push, removed locally and pulled back is identical and runs', async (t) => {
  const base = await images.importBusybox('roundtrip');
  const reference = `${bed.registry.host}/clients/roundtrip:v1`;
  await images.build(
    reference,
    [
      `FROM ${base}`,
      'COPY greeting.txt /greeting.txt',
      'RUN echo "built by RUN" > /built.txt',
      'CMD ["/bin/sh", "-c", "cat /greeting.txt /built.txt"]',
    ].join('\n'),
    { 'greeting.txt': 'hello from berth\n' },
  );
  const layers = await images.shortDiffIds(reference);
  t.is(layers.length, 3, 'busybox base + COPY + RUN');

  const pushed = await assertPushRemovePull(t, images, reference, 3, [base]);
  t.is(
    await images.inspect(reference, '{{json .RepoDigests}}'),
    JSON.stringify([`${bed.registry.host}/clients/roundtrip@${pushed.digest}`]),
  );

  t.is(await images.runContainer(reference), 'hello from berth\nbuilt by RUN\n');
});

/** Pushes `first` (busybox + one layer), then builds `second` on top of it with one more layer. */
async function pushFirstAndBuildSecond(name: string, first: string, second: string) {
  const base = await images.importBusybox(name);
  await images.build(first, [`FROM ${base}`, 'COPY first.txt /first.txt'].join('\n'), { 'first.txt': `first (${name})\n` });
  await images.push(first);
  await images.build(
    second,
    [`FROM ${first}`, `RUN echo "second (${name})" > /second.txt`, 'CMD ["cat", "/first.txt", "/second.txt"]'].join('\n'),
  );
  const sharedLayers = await images.shortDiffIds(first);
  const newLayers = (await images.shortDiffIds(second)).filter((layer) => !sharedLayers.includes(layer));
  return { base, sharedLayers, newLayers };
}

test('pushing a new tag that shares base layers reports "Layer already exists" for them and uploads only the new layer', async (t) => {
  const first = `${bed.registry.host}/clients/shared:v1`;
  const second = `${bed.registry.host}/clients/shared:v2`;
  const { sharedLayers, newLayers } = await pushFirstAndBuildSecond('same-repo', first, second);

  t.is(sharedLayers.length, 2, 'busybox base + COPY');
  t.is(newLayers.length, 1, 'RUN');

  const pushed = await images.push(second);
  for (const layer of sharedLayers) t.is(pushed.layers.get(layer), 'Layer already exists', pushed.output);
  t.is(pushed.layers.get(newLayers[0]!), 'Pushed', pushed.output);
});

test('pushing to another repository mounts the shared layers from the first one, and the result pulls and runs', async (t) => {
  const first = `${bed.registry.host}/clients/mount-source:v1`;
  const second = `${bed.registry.host}/clients/mount-target:v1`;
  const { base, sharedLayers, newLayers } = await pushFirstAndBuildSecond('cross-repo', first, second);
  // Without layers to share, the mount assertions below would hold for any registry.
  t.is(sharedLayers.length, 2, 'busybox base + COPY');
  t.is(newLayers.length, 1, 'RUN');

  const pushed = await images.push(second);
  for (const layer of sharedLayers) t.is(pushed.layers.get(layer), 'Mounted from clients/mount-source', pushed.output);
  t.is(pushed.layers.get(newLayers[0]!), 'Pushed', pushed.output);

  // The mounted blobs must be served from the target repository itself.
  await images.removeLocally(second, first, base);
  const pulled = await images.pull(second);
  t.is(pulled.digest, pushed.digest);
  t.is(await images.runContainer(second), 'first (cross-repo)\nsecond (cross-repo)\n');
});

test('a multi-stage docker build pulls its FROM images from Berth and the built image runs', async (t) => {
  const base = await images.importBusybox('multi-stage');
  const runtime = `${bed.registry.host}/stages/runtime:1`;
  const toolchain = `${bed.registry.host}/stages/toolchain:1`;
  await bed.client.docker(['tag', base, runtime]);
  await images.build(toolchain, [`FROM ${base}`, 'COPY make-artifact /bin/make-artifact'].join('\n'), {
    'make-artifact': '#!/bin/sh\necho "artifact made in the build stage"\n',
  });
  const runtimePush = await images.push(runtime);
  const toolchainPush = await images.push(toolchain);
  await images.removeLocally(runtime, toolchain, base);

  const output = await images.build(
    'local/multi-stage:app',
    [
      `FROM ${toolchain} AS build`,
      'RUN make-artifact > /artifact.txt',
      `FROM ${runtime}`,
      'COPY --from=build /artifact.txt /artifact.txt',
      'CMD ["cat", "/artifact.txt"]',
    ].join('\n'),
  );
  t.regex(output, new RegExp(`Digest: ${toolchainPush.digest}`));
  t.regex(output, new RegExp(`Digest: ${runtimePush.digest}`));
  t.is(await images.inspect(runtime, '{{index .RepoDigests 0}}'), `${bed.registry.host}/stages/runtime@${runtimePush.digest}`);
  t.is(await images.inspect(toolchain, '{{index .RepoDigests 0}}'), `${bed.registry.host}/stages/toolchain@${toolchainPush.digest}`);

  t.is(await images.runContainer('local/multi-stage:app'), 'artifact made in the build stage\n');
});
