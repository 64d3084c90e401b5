import test from 'ava';
import {
  ACCEPTED_MANIFEST_TYPES,
  MediaType,
  UnsupportedMediaTypeError,
  baseMediaType,
  isImageManifestMediaType,
  isIndexMediaType,
  layerCompression,
} from '../../oci/media-types.js';

test('OCI and Docker manifests are image manifests, OCI indexes and Docker lists are indexes', (t) => {
  t.true(isImageManifestMediaType(MediaType.ociManifest));
  t.true(isImageManifestMediaType(MediaType.dockerManifest));
  t.true(isIndexMediaType(MediaType.ociIndex));
  t.true(isIndexMediaType(MediaType.dockerManifestList));
  t.false(isImageManifestMediaType(MediaType.ociIndex));
  t.false(isIndexMediaType(MediaType.dockerSchema1));
});

test('manifest requests accept every supported manifest type and never schema 1', (t) => {
  t.deepEqual(
    [...ACCEPTED_MANIFEST_TYPES].sort(),
    [MediaType.dockerManifest, MediaType.dockerManifestList, MediaType.ociIndex, MediaType.ociManifest].sort(),
  );
});

for (const [mediaType, compression] of [
  [MediaType.ociLayer, 'none'],
  [MediaType.ociLayerGzip, 'gzip'],
  [MediaType.ociLayerZstd, 'zstd'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
  [MediaType.dockerLayer, 'gzip'],
  [MediaType.dockerForeignLayer, 'gzip'],
  ['application/vnd.docker.image.rootfs.diff.tar', 'none'],
] as const) {
  test(`layer type ${mediaType} is ${compression}`, (t) => {
    t.is(layerCompression(mediaType), compression);
  });
}

test('a layer type nobody defined is refused', (t) => {
  t.throws(() => layerCompression('application/x-tar'), { instanceOf: UnsupportedMediaTypeError });
});

test('a Content-Type loses its parameters and case', (t) => {
  t.is(baseMediaType('Application/Vnd.OCI.Image.Manifest.v1+json; charset=utf-8'), MediaType.ociManifest);
  t.is(baseMediaType(''), undefined);
  t.is(baseMediaType(undefined), undefined);
});
