import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run, type RunOptions, type RunResult } from '../helpers/exec.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import {
  buildOciIndex,
  buildTestImage,
  dirBlobPath,
  imageBlobs,
  ociBlobPath,
  readOciLayoutRoot,
  writeDirImage,
  writeOciLayout,
  type Blob,
  type TestImage,
} from '../helpers/test-images.js';
import { digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';

let registry: RegistryProcess;
let workDir: string;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-skopeo-test-'));
  registry = await RegistryProcess.start();
});

test.after.always(async () => {
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/**
 * skopeo against Berth over plain http. --insecure-policy: the host's /etc/containers/policy.json is not
 * the subject of these tests.
 */
function skopeo(args: readonly string[], options?: RunOptions): Promise<RunResult> {
  return run('skopeo', ['--insecure-policy', ...args], options);
}

function copyToBerth(source: string, reference: string, extraArgs: readonly string[] = []): Promise<RunResult> {
  return skopeo(['copy', '--dest-tls-verify=false', ...extraArgs, source, `docker://${registry.host}/${reference}`]);
}

function copyFromBerth(reference: string, destination: string, extraArgs: readonly string[] = []): Promise<RunResult> {
  return skopeo(['copy', '--src-tls-verify=false', ...extraArgs, `docker://${registry.host}/${reference}`, destination]);
}

/** The manifest exactly as Berth serves it. */
async function rawManifest(reference: string): Promise<string> {
  return (await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${registry.host}/${reference}`])).stdout;
}

interface InspectOutput {
  Name: string;
  Digest: string;
  RepoTags: string[];
  Architecture: string;
  Os: string;
  Layers: string[];
}

async function inspect(reference: string, globalArgs: readonly string[] = []): Promise<InspectOutput> {
  const { stdout } = await skopeo([...globalArgs, 'inspect', '--tls-verify=false', `docker://${registry.host}/${reference}`]);
  return JSON.parse(stdout) as InspectOutput;
}

async function listTags(repository: string): Promise<string[]> {
  const { stdout } = await skopeo(['list-tags', '--tls-verify=false', `docker://${registry.host}/${repository}`]);
  return (JSON.parse(stdout) as { Tags: string[] }).Tags;
}

async function newDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(workDir, `${prefix}-`));
}

/** Every blob came back byte for byte, at the path `locate` gives for its digest. */
async function assertBlobsCopied(t: ExecutionContext, blobs: readonly Blob[], locate: (digest: string) => string): Promise<void> {
  for (const blob of blobs) t.true((await readFile(locate(blob.digest))).equals(blob.bytes), `blob ${blob.digest} differs`);
}

test('a Docker v2 schema 2 image copied into Berth and back out keeps its manifest digest and blobs', async (t) => {
  const image = await buildTestImage(workDir, {
    format: 'docker',
    layers: [{ 'hello.txt': 'hello from a docker-format image\n' }, { 'etc/motd': 'second layer\n' }],
  });
  const source = await newDir('v2s2-source');
  await writeDirImage(source, image);

  await copyToBerth(`dir:${source}`, 'skopeo/docker-format:v1');
  t.is(digestOf(await rawManifest('skopeo/docker-format:v1')), image.manifest.digest);
  t.is((await inspect('skopeo/docker-format:v1')).Digest, image.manifest.digest);

  const destination = await newDir('v2s2-destination');
  await copyFromBerth('skopeo/docker-format:v1', `dir:${destination}`);
  t.true((await readFile(path.join(destination, 'manifest.json'))).equals(image.manifest.bytes), 'manifest.json differs');
  await assertBlobsCopied(t, [image.config, ...image.layers], (digest) => dirBlobPath(destination, digest));
});

test('an OCI image copied into Berth and back out to an OCI layout keeps its manifest digest and blobs', async (t) => {
  const image = await buildTestImage(workDir, {
    format: 'oci',
    layers: [{ 'hello.txt': 'hello from an OCI image\n' }, { 'etc/motd': 'second layer\n' }],
  });
  const source = await newDir('oci-source');
  await writeOciLayout(source, 'v1', image.manifest, imageBlobs(image));

  await copyToBerth(`oci:${source}:v1`, 'skopeo/oci-format:v1');
  t.is(digestOf(await rawManifest('skopeo/oci-format:v1')), image.manifest.digest);
  t.is((await inspect('skopeo/oci-format:v1')).Digest, image.manifest.digest);

  const destination = await newDir('oci-destination');
  await copyFromBerth('skopeo/oci-format:v1', `oci:${destination}:v1`);
  const copied = await readOciLayoutRoot(destination, 'v1');
  t.is(copied.digest, image.manifest.digest);
  t.is(copied.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  await assertBlobsCopied(t, [image.config, ...image.layers], (digest) => ociBlobPath(destination, digest));
});

test('a multi-arch OCI index copied with --all keeps its index digest and serves each platform its own image', async (t) => {
  const platforms = [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64' },
  ];
  const images: TestImage[] = [];
  for (const platform of platforms) {
    images.push(await buildTestImage(workDir, { format: 'oci', platform, layers: [{ 'platform.txt': `${platform.architecture}\n` }] }));
  }
  const [amd64, arm64] = images as [TestImage, TestImage];
  const index = buildOciIndex(images);
  const source = await newDir('multiarch-source');
  await writeOciLayout(source, 'v1', index, images.flatMap(imageBlobs));

  await copyToBerth(`oci:${source}:v1`, 'skopeo/multiarch:v1', ['--all']);
  const served = await rawManifest('skopeo/multiarch:v1');
  t.is(digestOf(served), index.digest);
  t.is((JSON.parse(served) as { mediaType: string }).mediaType, MediaType.ociIndex);
  for (const image of images) {
    t.is(digestOf(await rawManifest(`skopeo/multiarch@${image.manifest.digest}`)), image.manifest.digest);
  }

  // A client on arm64 resolves the tag through the index to the arm64 image.
  const armView = await inspect('skopeo/multiarch:v1', ['--override-arch', 'arm64', '--override-os', 'linux']);
  t.is(armView.Architecture, 'arm64');
  t.deepEqual(
    armView.Layers,
    arm64.layers.map((layer) => layer.digest),
  );
  const amdView = await inspect('skopeo/multiarch:v1', ['--override-arch', 'amd64', '--override-os', 'linux']);
  t.deepEqual(
    amdView.Layers,
    amd64.layers.map((layer) => layer.digest),
  );

  const destination = await newDir('multiarch-destination');
  await copyFromBerth('skopeo/multiarch:v1', `oci:${destination}:v1`, ['--all']);
  t.is((await readOciLayoutRoot(destination, 'v1')).digest, index.digest);
  await assertBlobsCopied(t, images.flatMap(imageBlobs), (digest) => ociBlobPath(destination, digest));
});

test('skopeo list-tags and inspect describe a repository, and after skopeo delete the deleted tag is gone', async (t) => {
  const first = await buildTestImage(workDir, { format: 'oci', layers: [{ 'version.txt': '1\n' }] });
  const second = await buildTestImage(workDir, { format: 'oci', layers: [{ 'version.txt': '2\n' }] });
  const [firstSource, secondSource] = [await newDir('tags-first'), await newDir('tags-second')];
  await writeOciLayout(firstSource, 'v1', first.manifest, imageBlobs(first));
  await writeOciLayout(secondSource, 'v2', second.manifest, imageBlobs(second));
  await copyToBerth(`oci:${firstSource}:v1`, 'skopeo/tags:v1');
  await copyToBerth(`oci:${firstSource}:v1`, 'skopeo/tags:latest');
  await copyToBerth(`oci:${secondSource}:v2`, 'skopeo/tags:v2');

  // The distribution spec lists tags in lexical order.
  t.deepEqual(await listTags('skopeo/tags'), ['latest', 'v1', 'v2']);
  const described = await inspect('skopeo/tags:v2');
  t.is(described.Name, `${registry.host}/skopeo/tags`);
  t.is(described.Digest, second.manifest.digest);
  t.deepEqual(described.RepoTags, ['latest', 'v1', 'v2']);
  t.is(described.Os, 'linux');
  t.is(described.Architecture, 'amd64');
  t.deepEqual(
    described.Layers,
    second.layers.map((layer) => layer.digest),
  );

  await skopeo(['delete', '--tls-verify=false', `docker://${registry.host}/skopeo/tags:v2`]);
  const deleted = await skopeo(['inspect', '--tls-verify=false', `docker://${registry.host}/skopeo/tags:v2`], { allowFailure: true });
  t.not(deleted.code, 0);
  t.regex(deleted.stderr, /manifest unknown/i);
  t.deepEqual(await listTags('skopeo/tags'), ['latest', 'v1']);
  t.is((await inspect('skopeo/tags:v1')).Digest, first.manifest.digest, 'the other image is untouched');
});
