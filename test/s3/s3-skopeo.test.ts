import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run, type RunResult } from '../helpers/exec.js';
import { serverErrorLines } from '../helpers/http-client.js';
import type { RegistryProcess } from '../helpers/registry-process.js';
import { s3Backend, type StorageBackend } from '../helpers/storage-backends.js';
import {
  buildOciIndex,
  buildTestImage,
  imageBlobs,
  ociBlobPath,
  readOciLayoutRoot,
  writeOciLayout,
  type Blob,
  type TestImage,
} from '../helpers/test-images.js';

// One s3rver and one registry per pull mode: blob GETs redirected (307) to a presigned S3 URL, or streamed by the registry.
const modes = [
  { name: 'redirect', redirect: true },
  { name: 'proxy', redirect: false },
] as const;

let workDir: string | undefined;
const backends = new Map<string, StorageBackend>(
  modes.map((mode) => [mode.name, s3Backend(`s3-${mode.name}`, { redirect: mode.redirect })]),
);
const registries = new Map<string, RegistryProcess>();

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-s3-skopeo-test-'));
  await Promise.all(modes.map(async (mode) => registries.set(mode.name, await backends.get(mode.name)!.startRegistry())));
});

test.after.always(async () => {
  await Promise.allSettled([...registries.values()].map((registry) => registry.destroy()));
  await Promise.allSettled([...backends.values()].map((backend) => backend.stop()));
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** skopeo against Berth over plain http; --insecure-policy because the host's policy.json is not under test. */
function skopeo(args: readonly string[]): Promise<RunResult> {
  return run('skopeo', ['--insecure-policy', ...args]);
}

async function newDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(workDir!, `${prefix}-`));
}

/** GETs of `repository`'s blobs the registry answered with `status`, from its request log. */
function blobGets(registry: RegistryProcess, repository: string, status: number): number {
  return (
    registry.logs.match(new RegExp(`"method":"GET","path":"/v2/${repository}/blobs/sha256:[0-9a-f]{64}"[^\\n]*"status":${status}`, 'g'))
      ?.length ?? 0
  );
}

/**
 * Copies the OCI layout at `source` into Berth and back out to a fresh layout: the root keeps its digest, every
 * manifest and blob comes back byte for byte, and the blobs (configs and layers) are in the S3 bucket.
 */
async function assertRoundTrip(
  t: ExecutionContext,
  mode: (typeof modes)[number],
  source: string,
  reference: string,
  root: Blob,
  manifests: readonly Blob[],
  blobs: readonly Blob[],
  extraArgs: readonly string[] = [],
): Promise<void> {
  const registry = registries.get(mode.name)!;
  const backend = backends.get(mode.name)!;
  const repository = reference.split(':')[0]!;
  const remote = `docker://${registry.host}/${reference}`;

  await skopeo(['copy', '--dest-tls-verify=false', ...extraArgs, `oci:${source}:v1`, remote]);
  for (const blob of blobs) t.true(await backend.hasBlob(registry, blob.digest), `blob ${blob.digest} is not in the S3 bucket`);

  const destination = await newDir(`${mode.name}-destination`);
  await skopeo(['copy', '--src-tls-verify=false', ...extraArgs, remote, `oci:${destination}:v1`]);
  t.is((await readOciLayoutRoot(destination, 'v1')).digest, root.digest, 'manifest digest changed in the round trip');
  for (const blob of [root, ...manifests, ...blobs]) {
    t.true((await readFile(ociBlobPath(destination, blob.digest))).equals(blob.bytes), `${blob.mediaType} ${blob.digest} differs`);
  }

  // Every blob skopeo fetched was redirected to S3, or streamed by the registry, as the mode says.
  const redirected = blobGets(registry, repository, 307);
  const streamed = blobGets(registry, repository, 200);
  t.is(mode.redirect ? redirected : streamed, blobs.length, 'blob GETs answered as the mode says');
  t.is(mode.redirect ? streamed : redirected, 0, 'a blob GET was answered the other way');
  t.deepEqual(serverErrorLines(registry.logs), []);
}

for (const mode of modes) {
  test(`${mode.name} mode: skopeo copies a two-layer OCI image into S3-backed Berth and back out with the same manifest digest and blobs`, async (t) => {
    const image = await buildTestImage(workDir!, {
      format: 'oci',
      layers: [{ 'hello.txt': `hello from S3 (${mode.name})\n` }, { 'etc/motd': `second layer (${mode.name})\n` }],
    });
    t.is(image.layers.length, 2);
    const source = await newDir(`${mode.name}-image-source`);
    await writeOciLayout(source, 'v1', image.manifest, imageBlobs(image));

    await assertRoundTrip(t, mode, source, `s3-skopeo/${mode.name}-image:v1`, image.manifest, [], [image.config, ...image.layers]);
  });

  test(`${mode.name} mode: skopeo copies a multi-arch OCI index with --all into S3-backed Berth and back out with the same index digest and blobs`, async (t) => {
    const images: TestImage[] = [];
    for (const architecture of ['amd64', 'arm64']) {
      images.push(
        await buildTestImage(workDir!, {
          format: 'oci',
          platform: { os: 'linux', architecture },
          layers: [{ 'platform.txt': `${architecture} (${mode.name})\n` }],
        }),
      );
    }
    const index = buildOciIndex(images);
    const source = await newDir(`${mode.name}-index-source`);
    await writeOciLayout(source, 'v1', index, images.flatMap(imageBlobs));

    const manifests = images.map((image) => image.manifest);
    const blobs = images.flatMap((image) => [image.config, ...image.layers]);
    await assertRoundTrip(t, mode, source, `s3-skopeo/${mode.name}-multiarch:v1`, index, manifests, blobs, ['--all']);
  });
}
