/** The OCI and Docker media types Berth reads and writes, and what each implies. */

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociNondistributableLayerPrefix: 'application/vnd.oci.image.layer.nondistributable.',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export const IMAGE_MANIFEST_TYPES: ReadonlySet<string> = new Set([MediaType.dockerManifest, MediaType.ociManifest]);
export const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.dockerManifestList, MediaType.ociIndex]);

/** Sent as Accept on every manifest request: a registry then never downgrades to a schema1 manifest. */
export const ACCEPTED_MANIFEST_TYPES: readonly string[] = [
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
];

export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

export function isImageManifestMediaType(mediaType: string): boolean {
  return IMAGE_MANIFEST_TYPES.has(mediaType);
}

/** Strips parameters (`; charset=utf-8`) and case from a Content-Type value. */
export function baseMediaType(contentType: string | undefined): string | undefined {
  const base = contentType?.split(';')[0]?.trim().toLowerCase();
  return base ? base : undefined;
}

export type Compression = 'none' | 'gzip' | 'zstd';

const LAYER_COMPRESSION: Record<string, Compression> = {
  [MediaType.ociLayer]: 'none',
  [MediaType.ociLayerGzip]: 'gzip',
  [MediaType.ociLayerZstd]: 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  [MediaType.dockerLayer]: 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar.zstd': 'zstd',
  [MediaType.dockerForeignLayer]: 'gzip',
};

/** The OCI layer media type of a tar with this compression. */
export const OCI_LAYER_TYPE: Record<Compression, string> = {
  none: MediaType.ociLayer,
  gzip: MediaType.ociLayerGzip,
  zstd: MediaType.ociLayerZstd,
};

export class UnsupportedMediaTypeError extends Error {}

export function layerCompression(mediaType: string): Compression {
  const compression = LAYER_COMPRESSION[mediaType];
  if (compression === undefined) throw new UnsupportedMediaTypeError(`unsupported layer media type ${mediaType}`);
  return compression;
}

/** The two manifest families an image can be written in: OCI's, or docker's schema 2 (v2s2). */
export type ManifestFamily = 'oci' | 'docker';

export const MANIFEST_TYPES: Record<ManifestFamily, { manifest: string; config: string }> = {
  oci: { manifest: MediaType.ociManifest, config: MediaType.ociConfig },
  docker: { manifest: MediaType.dockerManifest, config: MediaType.dockerConfig },
};

const DOCKER_LAYER_TYPE: Record<Compression, string> = {
  none: 'application/vnd.docker.image.rootfs.diff.tar',
  gzip: MediaType.dockerLayer,
  zstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
};

/**
 * A layer's media type in a manifest of this family, for the same bytes: its compression decides. Foreign
 * and non-distributable layers keep theirs (where their bytes come from is part of that type).
 */
export function layerTypeIn(mediaType: string, family: ManifestFamily): string {
  if (mediaType === MediaType.dockerForeignLayer || mediaType.startsWith(MediaType.ociNondistributableLayerPrefix)) return mediaType;
  const compression = layerCompression(mediaType);
  return family === 'oci' ? OCI_LAYER_TYPE[compression] : DOCKER_LAYER_TYPE[compression];
}
