import test from 'ava';
import { descriptorSchema, imageConfigSchema, imageManifestSchema, indexSchema } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';

const DIGEST = `sha256:${'d'.repeat(64)}`;
const descriptor = { mediaType: MediaType.ociLayerGzip, digest: DIGEST, size: 10 };

test('a descriptor keeps fields it does not know, as the spec asks of readers', (t) => {
  const parsed = descriptorSchema.parse({ ...descriptor, 'org.example/extra': 1 });
  t.is((parsed as Record<string, unknown>)['org.example/extra'], 1);
});

test('a descriptor with a malformed digest, a negative or fractional size is refused', (t) => {
  t.false(descriptorSchema.safeParse({ ...descriptor, digest: 'sha256:abc' }).success);
  t.false(descriptorSchema.safeParse({ ...descriptor, size: -1 }).success);
  t.false(descriptorSchema.safeParse({ ...descriptor, size: 1.5 }).success);
});

test('an image manifest needs schemaVersion 2, a config and layers', (t) => {
  t.true(imageManifestSchema.safeParse({ schemaVersion: 2, config: descriptor, layers: [descriptor] }).success);
  t.false(imageManifestSchema.safeParse({ schemaVersion: 1, config: descriptor, layers: [] }).success);
  t.false(imageManifestSchema.safeParse({ schemaVersion: 2, layers: [] }).success);
});

test('an index lists manifests with their platforms', (t) => {
  const parsed = indexSchema.parse({
    schemaVersion: 2,
    manifests: [{ ...descriptor, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }],
  });
  t.is(parsed.manifests[0]?.platform?.architecture, 'arm64');
});

test('an image config keeps what a container runs with and accepts docker nulls', (t) => {
  const parsed = imageConfigSchema.parse({
    os: 'linux',
    architecture: 'amd64',
    config: { Cmd: null, Env: ['A=1'], Healthcheck: { Test: ['CMD', 'true'], Retries: 2 }, NotAContainerField: 1 },
    rootfs: { type: 'layers', diff_ids: [DIGEST] },
  });
  t.deepEqual(parsed.config, { Cmd: null, Env: ['A=1'], Healthcheck: { Test: ['CMD', 'true'], Retries: 2 } });
  t.false(imageConfigSchema.safeParse({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: ['nope'] } }).success);
});
