import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DockerDaemon } from '../helpers/dockerd.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { createBusyboxRootfsTarball } from '../helpers/test-images.js';

// One dockerd and one registry for the file. Every test builds on its own busybox base and puts test-specific
// content in every layer, so concurrent tests share no layer: "Layer already exists" and "Mounted from" seen by
// one test can only come from its own pushes.
let registry: RegistryProcess;
let daemon: DockerDaemon;
let workDir: string;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-docker-test-'));
  // Each is assigned as soon as it exists, so that test.after.always cleans it up even if the other fails.
  await Promise.all([
    RegistryProcess.start().then((started) => (registry = started)),
    DockerDaemon.start().then((started) => (daemon = started)),
  ]);
});

test.after.always(async () => {
  await daemon?.stop();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** `docker import` of a fresh busybox rootfs: a one-layer local image with `/bin/sh`. */
async function importBusybox(name: string): Promise<string> {
  const tarball = await createBusyboxRootfsTarball(workDir, name);
  const tag = `local/${name}:base`;
  await daemon.docker(['import', '--change', 'CMD ["/bin/sh"]', '--change', 'ENV PATH=/bin', tarball, tag]);
  return tag;
}

/** Legacy `docker build` with no network; `files` are written into the build context next to the Dockerfile. */
async function build(tag: string, dockerfile: string, files: Record<string, string> = {}): Promise<string> {
  const context = await mkdtemp(path.join(workDir, 'context-'));
  await writeFile(path.join(context, 'Dockerfile'), dockerfile);
  // Executable, so that a COPYed script can be run by a later RUN.
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(context, name), content, { mode: 0o755 });
  const { stdout } = await daemon.docker(['build', '--network', 'none', '--tag', tag, context]);
  return stdout;
}

interface PushOutcome {
  digest: string;
  /** Final progress message per layer, keyed by the short diff ID docker prints (e.g. "Pushed"). */
  layers: Map<string, string>;
  output: string;
}

async function push(reference: string): Promise<PushOutcome> {
  const { stdout } = await daemon.docker(['push', reference]);
  const digest = /: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(stdout)?.[1];
  if (!digest) throw new Error(`no digest in docker push output:\n${stdout}`);
  const layers = new Map<string, string>();
  for (const [, id, message] of stdout.matchAll(/^([0-9a-f]{12}): (.+)$/gm)) layers.set(id!, message!);
  return { digest, layers, output: stdout };
}

async function pull(reference: string): Promise<{ digest: string; output: string }> {
  const { stdout } = await daemon.docker(['pull', reference]);
  const digest = /^Digest: (sha256:[0-9a-f]{64})$/m.exec(stdout)?.[1];
  if (!digest) throw new Error(`no digest in docker pull output:\n${stdout}`);
  return { digest, output: stdout };
}

async function inspect(reference: string, format: string): Promise<string> {
  return (await daemon.docker(['image', 'inspect', '--format', format, reference])).stdout.trim();
}

/** The image's layers as docker's push output names them: the first 12 hex digits of each diff ID. */
async function shortDiffIds(reference: string): Promise<string[]> {
  const diffIds = JSON.parse(await inspect(reference, '{{json .RootFS.Layers}}')) as string[];
  return diffIds.map((diffId) => diffId.slice('sha256:'.length, 'sha256:'.length + 12));
}

/** Removes images locally; afterwards a pull must fetch every layer from the registry. */
async function removeLocally(...references: string[]): Promise<void> {
  await daemon.docker(['rmi', ...references]);
  for (const reference of references) {
    const lookup = await daemon.docker(['image', 'inspect', reference], { allowFailure: true });
    if (lookup.code === 0) throw new Error(`${reference} is still present locally after docker rmi`);
  }
}

async function runContainer(reference: string): Promise<string> {
  return (await daemon.docker(['run', '--rm', '--network', 'none', reference])).stdout;
}

test('a multi-layer image pushed with docker push, removed locally and pulled back is identical and runs', async (t) => {
  const base = await importBusybox('roundtrip');
  const reference = `${registry.host}/clients/roundtrip:v1`;
  await build(
    reference,
    [`FROM ${base}`, 'COPY greeting.txt /greeting.txt', 'RUN echo "built by RUN" > /built.txt', 'CMD ["/bin/sh", "-c", "cat /greeting.txt /built.txt"]'].join('\n'),
    { 'greeting.txt': 'hello from berth\n' },
  );
  const imageId = await inspect(reference, '{{.Id}}');
  const layers = await shortDiffIds(reference);
  t.is(layers.length, 3, 'busybox base + COPY + RUN');

  const pushed = await push(reference);
  t.deepEqual([...pushed.layers.values()], ['Pushed', 'Pushed', 'Pushed'], pushed.output);

  await removeLocally(reference, base);
  const pulled = await pull(reference);
  t.is(pulled.digest, pushed.digest);
  t.is(pulled.output.match(/: Pull complete$/gm)?.length, 3, pulled.output);
  t.is(await inspect(reference, '{{.Id}}'), imageId, 'same config digest as the image that was pushed');
  t.is(await inspect(reference, '{{json .RepoDigests}}'), JSON.stringify([`${registry.host}/clients/roundtrip@${pushed.digest}`]));

  t.is(await runContainer(reference), 'hello from berth\nbuilt by RUN\n');
});

/** Pushes `first` (busybox + one layer), then builds `second` on top of it with one more layer. */
async function pushFirstAndBuildSecond(name: string, first: string, second: string) {
  const base = await importBusybox(name);
  await build(first, [`FROM ${base}`, 'COPY first.txt /first.txt'].join('\n'), { 'first.txt': `first (${name})\n` });
  await push(first);
  await build(second, [`FROM ${first}`, `RUN echo "second (${name})" > /second.txt`, 'CMD ["cat", "/first.txt", "/second.txt"]'].join('\n'));
  const sharedLayers = await shortDiffIds(first);
  const newLayers = (await shortDiffIds(second)).filter((layer) => !sharedLayers.includes(layer));
  return { base, sharedLayers, newLayers };
}

test('pushing a new tag that shares base layers reports "Layer already exists" for them and uploads only the new layer', async (t) => {
  const first = `${registry.host}/clients/shared:v1`;
  const second = `${registry.host}/clients/shared:v2`;
  const { sharedLayers, newLayers } = await pushFirstAndBuildSecond('same-repo', first, second);

  t.is(sharedLayers.length, 2, 'busybox base + COPY');
  t.is(newLayers.length, 1, 'RUN');

  const pushed = await push(second);
  for (const layer of sharedLayers) t.is(pushed.layers.get(layer), 'Layer already exists', pushed.output);
  t.is(pushed.layers.get(newLayers[0]!), 'Pushed', pushed.output);
});

test('pushing to another repository mounts the shared layers from the first one, and the result pulls and runs', async (t) => {
  const first = `${registry.host}/clients/mount-source:v1`;
  const second = `${registry.host}/clients/mount-target:v1`;
  const { base, sharedLayers, newLayers } = await pushFirstAndBuildSecond('cross-repo', first, second);

  const pushed = await push(second);
  for (const layer of sharedLayers) t.is(pushed.layers.get(layer), 'Mounted from clients/mount-source', pushed.output);
  t.is(pushed.layers.get(newLayers[0]!), 'Pushed', pushed.output);

  // The mounted blobs must be served from the target repository itself.
  await removeLocally(second, first, base);
  const pulled = await pull(second);
  t.is(pulled.digest, pushed.digest);
  t.is(await runContainer(second), 'first (cross-repo)\nsecond (cross-repo)\n');
});

test('a multi-stage docker build pulls its FROM images from Berth and the built image runs', async (t) => {
  const base = await importBusybox('multi-stage');
  const runtime = `${registry.host}/stages/runtime:1`;
  const toolchain = `${registry.host}/stages/toolchain:1`;
  await daemon.docker(['tag', base, runtime]);
  await build(toolchain, [`FROM ${base}`, 'COPY make-artifact /bin/make-artifact'].join('\n'), {
    'make-artifact': '#!/bin/sh\necho "artifact made in the build stage"\n',
  });
  const runtimePush = await push(runtime);
  const toolchainPush = await push(toolchain);
  await removeLocally(runtime, toolchain, base);

  const output = await build(
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
  t.is(await inspect(runtime, '{{index .RepoDigests 0}}'), `${registry.host}/stages/runtime@${runtimePush.digest}`);
  t.is(await inspect(toolchain, '{{index .RepoDigests 0}}'), `${registry.host}/stages/toolchain@${toolchainPush.digest}`);

  t.is(await runContainer('local/multi-stage:app'), 'artifact made in the build stage\n');
});
