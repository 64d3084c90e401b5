import test from 'ava';
import { MediaType } from '../../oci/media-types.js';
import { assertRegistryError, request } from '../helpers/http-client.js';
import {
  EMPTY_CONFIG,
  artifactManifest,
  descriptorOf,
  indexManifest,
  makeBlob,
  pushBlob,
  pushImage,
  pushManifest,
  putManifest,
  uniqueRepo,
  unknownDigest,
  type Descriptor,
  type Manifest,
} from '../helpers/oci-content.js';
import { sharedRegistry } from '../helpers/shared-registry.js';

const registry = sharedRegistry();

const SIGNATURE = 'application/vnd.example.signature.v1';
const SBOM = 'application/vnd.example.sbom.v1+json';

interface ReferrersIndex {
  schemaVersion: number;
  mediaType: string;
  manifests: Descriptor[];
}

async function referrers(repo: string, subject: string, query = ''): Promise<{ response: Response; body: ReferrersIndex }> {
  const response = await request(registry.url, `/v2/${repo}/referrers/${subject}${query}`);
  return { response, body: (await response.json()) as ReferrersIndex };
}

/** Pushes an artifact about `subject` (with its empty config and one layer) by digest. */
async function pushArtifact(
  repo: string,
  subject: Descriptor,
  artifactType: string,
  annotations?: Record<string, string>,
): Promise<Manifest> {
  const layer = await pushBlob(registry.url, repo, makeBlob(64));
  await pushBlob(registry.url, repo, EMPTY_CONFIG);
  const manifest = artifactManifest({ artifactType, layers: [layer], subject, annotations });
  const response = await putManifest(registry.url, repo, manifest.digest, manifest);
  if (response.status !== 201) throw new Error(`push artifact: ${response.status} ${await response.text()}`);
  return manifest;
}

function byDigest(a: Descriptor, b: Descriptor): number {
  return a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0;
}

test('referrers of a subject list every referring manifest as descriptors in an OCI index', async (t) => {
  const repo = uniqueRepo('ref');
  const image = await pushImage(registry.url, repo, { tag: 'v1' });
  const subject = descriptorOf(image, image.mediaType);
  const signature = await pushArtifact(repo, subject, SIGNATURE, { 'org.example.signer': 'alice' });
  const sbom = await pushArtifact(repo, subject, SBOM);

  const { response, body } = await referrers(repo, image.digest);
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), MediaType.ociIndex);
  t.is(response.headers.get('oci-filters-applied'), null);
  t.is(body.schemaVersion, 2);
  t.is(body.mediaType, MediaType.ociIndex);
  const expected: Descriptor[] = [
    {
      mediaType: MediaType.ociManifest,
      digest: signature.digest,
      size: signature.size,
      artifactType: SIGNATURE,
      annotations: { 'org.example.signer': 'alice' },
    },
    { mediaType: MediaType.ociManifest, digest: sbom.digest, size: sbom.size, artifactType: SBOM },
  ];
  t.deepEqual([...body.manifests].sort(byDigest), expected.sort(byDigest));
});

test('an image manifest without artifactType is listed with its config media type as artifactType', async (t) => {
  const repo = uniqueRepo('ref');
  const image = await pushImage(registry.url, repo, { tag: 'v1' });
  const referrer = await pushImage(registry.url, repo, {
    configMediaType: 'application/vnd.example.config.v1+json',
    subject: descriptorOf(image, image.mediaType),
  });
  const { body } = await referrers(repo, image.digest);
  t.deepEqual(body.manifests, [
    {
      mediaType: MediaType.ociManifest,
      digest: referrer.digest,
      size: referrer.size,
      artifactType: 'application/vnd.example.config.v1+json',
    },
  ]);
});

test('an index with a subject and artifactType is listed as a referrer', async (t) => {
  const repo = uniqueRepo('ref');
  const image = await pushImage(registry.url, repo, { tag: 'v1' });
  const child = await pushArtifact(repo, descriptorOf(image, image.mediaType), SIGNATURE);
  const index = await pushManifest(
    registry.url,
    repo,
    indexManifest({
      manifests: [descriptorOf(child, child.mediaType)],
      artifactType: 'application/vnd.example.bundle.v1',
      subject: descriptorOf(image, image.mediaType),
      annotations: { 'org.example.kind': 'bundle' },
    }),
  );
  const { body } = await referrers(repo, image.digest, `?artifactType=${encodeURIComponent('application/vnd.example.bundle.v1')}`);
  t.deepEqual(body.manifests, [
    {
      mediaType: MediaType.ociIndex,
      digest: index.digest,
      size: index.size,
      artifactType: 'application/vnd.example.bundle.v1',
      annotations: { 'org.example.kind': 'bundle' },
    },
  ]);
});

test('?artifactType= lists only referrers of that type and sets OCI-Filters-Applied', async (t) => {
  const repo = uniqueRepo('ref');
  const image = await pushImage(registry.url, repo, { tag: 'v1' });
  const subject = descriptorOf(image, image.mediaType);
  const first = await pushArtifact(repo, subject, SIGNATURE, { n: '1' });
  const second = await pushArtifact(repo, subject, SIGNATURE, { n: '2' });
  await pushArtifact(repo, subject, SBOM);

  const { response, body } = await referrers(repo, image.digest, `?artifactType=${encodeURIComponent(SIGNATURE)}`);
  t.is(response.status, 200);
  t.is(response.headers.get('oci-filters-applied'), 'artifactType');
  t.deepEqual(body.manifests.map((d) => d.digest).sort(), [first.digest, second.digest].sort());
  t.true(body.manifests.every((d) => d.artifactType === SIGNATURE));

  const none = await referrers(repo, image.digest, `?artifactType=${encodeURIComponent('application/vnd.example.nothing')}`);
  t.is(none.response.headers.get('oci-filters-applied'), 'artifactType');
  t.deepEqual(none.body.manifests, []);
});

test('referrers of a subject nothing refers to is 200 with an empty manifests list', async (t) => {
  const repo = uniqueRepo('ref');
  const image = await pushImage(registry.url, repo, { tag: 'v1' });
  const { response, body } = await referrers(repo, image.digest);
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), MediaType.ociIndex);
  t.deepEqual(body, { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });
});

test('referrers in an unknown repository is 200 with an empty manifests list', async (t) => {
  const { response, body } = await referrers(uniqueRepo('ref'), unknownDigest());
  t.is(response.status, 200);
  t.deepEqual(body.manifests, []);
});

test('a referrer pushed before its subject exists is listed', async (t) => {
  const repo = uniqueRepo('ref');
  const subject = { mediaType: MediaType.ociManifest, digest: unknownDigest(), size: 999 };
  const artifact = await pushArtifact(repo, subject, SIGNATURE);
  const { body } = await referrers(repo, subject.digest);
  t.deepEqual(
    body.manifests.map((d) => d.digest),
    [artifact.digest],
  );
});

test('referrers are scoped to the repository', async (t) => {
  const repo = uniqueRepo('ref');
  const other = uniqueRepo('ref');
  const image = await pushImage(registry.url, repo, { tag: 'v1' });
  await pushArtifact(other, descriptorOf(image, image.mediaType), SIGNATURE);
  t.deepEqual((await referrers(repo, image.digest)).body.manifests, []);
  t.is((await referrers(other, image.digest)).body.manifests.length, 1);
});

test('deleting a referrer by digest removes it from the listing', async (t) => {
  const repo = uniqueRepo('ref');
  const image = await pushImage(registry.url, repo, { tag: 'v1' });
  const subject = descriptorOf(image, image.mediaType);
  const gone = await pushArtifact(repo, subject, SIGNATURE);
  const kept = await pushArtifact(repo, subject, SBOM);
  t.is((await request(registry.url, `/v2/${repo}/manifests/${gone.digest}`, { method: 'DELETE' })).status, 202);
  t.deepEqual(
    (await referrers(repo, image.digest)).body.manifests.map((d) => d.digest),
    [kept.digest],
  );
});

test('referrers with an invalid digest is DIGEST_INVALID', async (t) => {
  const repo = uniqueRepo('ref');
  await pushImage(registry.url, repo, { tag: 'v1' });
  for (const digest of ['sha256:zz', `sha256:${'a'.repeat(63)}`, `md5:${'a'.repeat(32)}`, `sha256:${'A'.repeat(64)}`]) {
    await assertRegistryError(t, await request(registry.url, `/v2/${repo}/referrers/${digest}`), 400, 'DIGEST_INVALID');
  }
});

test('a referrer is answered with OCI-Subject when pushed by tag as well', async (t) => {
  const repo = uniqueRepo('ref');
  const image = await pushImage(registry.url, repo, { tag: 'v1' });
  await pushBlob(registry.url, repo, EMPTY_CONFIG);
  const manifest = artifactManifest({ artifactType: SIGNATURE, subject: descriptorOf(image, image.mediaType) });
  const response = await putManifest(registry.url, repo, 'sig', manifest);
  t.is(response.status, 201);
  t.is(response.headers.get('oci-subject'), image.digest);
  t.deepEqual(
    (await referrers(repo, image.digest)).body.manifests.map((d) => d.digest),
    [manifest.digest],
  );
});
