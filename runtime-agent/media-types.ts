/** The OCI and Docker media types the agent understands, and what each implies. */

export const ManifestMediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/** Sent as Accept on every manifest request: a registry then never downgrades to a schema1 manifest. */
export const ACCEPTED_MANIFEST_TYPES = Object.values(ManifestMediaType);

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === ManifestMediaType.ociIndex || mediaType === ManifestMediaType.dockerManifestList;
}

export function isImageManifestMediaType(mediaType: string): boolean {
  return mediaType === ManifestMediaType.ociManifest || mediaType === ManifestMediaType.dockerManifest;
}

export type Compression = 'none' | 'gzip' | 'zstd';

const LAYER_COMPRESSION: Record<string, Compression> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar.zstd': 'zstd',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
};

export class UnsupportedMediaTypeError extends Error {}

export function layerCompression(mediaType: string): Compression {
  const compression = LAYER_COMPRESSION[mediaType];
  if (compression === undefined) throw new UnsupportedMediaTypeError(`unsupported layer media type ${mediaType}`);
  return compression;
}
