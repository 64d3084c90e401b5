import type { z } from 'zod';
import { digestOf } from '../../oci/digest.js';
import {
  imageConfigSchema,
  imageManifestSchema,
  indexSchema,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
} from '../../oci/manifest.js';
import { isImageManifestMediaType, isIndexMediaType } from '../../oci/media-types.js';
import { formatPlatform, platformRank, type Platform } from '../../oci/platform.js';

/** Manifests, indexes and image configs as the agent reads them; anything malformed is refused with a reason. */

export class ManifestError extends Error {}

export type ParsedManifest = { kind: 'image'; manifest: ImageManifest } | { kind: 'index'; manifests: Descriptor[] };

/** Classifies by the Content-Type, else by the document's own mediaType, else by its shape. */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  const document = parseJson(bytes, 'manifest') as { mediaType?: unknown; manifests?: unknown; schemaVersion?: unknown };
  if (document.schemaVersion === 1) throw new ManifestError('schema 1 manifests are not supported');
  const mediaType = [contentType, document.mediaType].find(
    (type): type is string => typeof type === 'string' && (isIndexMediaType(type) || isImageManifestMediaType(type)),
  );
  const isIndex = mediaType ? isIndexMediaType(mediaType) : Array.isArray(document.manifests);
  if (isIndex) return { kind: 'index', manifests: validate(indexSchema, document, 'image index').manifests };
  const manifest = validate(imageManifestSchema, document, 'image manifest');
  return { kind: 'image', manifest: { ...manifest, mediaType: manifest.mediaType ?? mediaType } };
}

export function parseImageConfig(bytes: Buffer, layerCount: number): ImageConfig {
  const config = validate(imageConfigSchema, parseJson(bytes, 'image config'), 'image config');
  if (config.rootfs.diff_ids.length !== layerCount) {
    throw new ManifestError(`image config lists ${config.rootfs.diff_ids.length} DiffIDs for ${layerCount} layers`);
  }
  return config;
}

/** The index entry for this host, as docker picks it: the best-ranked platform, first listed on a tie. */
export function selectPlatform(manifests: readonly Descriptor[], wanted: Platform): Descriptor {
  let best: { descriptor: Descriptor; rank: number } | undefined;
  for (const descriptor of manifests) {
    if (!isImageManifestMediaType(descriptor.mediaType)) continue;
    const rank = platformRank(descriptor.platform, wanted);
    if (rank !== undefined && (best === undefined || rank < best.rank)) best = { descriptor, rank };
  }
  if (!best) {
    const offered = manifests.map((entry) => (entry.platform ? formatPlatform(entry.platform) : 'unknown')).join(', ');
    throw new ManifestError(`no manifest for ${formatPlatform(wanted)} in the index (it has: ${offered || 'nothing'})`);
  }
  return best.descriptor;
}

/** A manifest fetched by digest must be exactly that content. */
export function verifyManifestDigest(bytes: Buffer, expected: string): void {
  if (digestOf(bytes, expected.startsWith('sha512:') ? 'sha512' : 'sha256') !== expected) {
    throw new ManifestError(`manifest content does not match ${expected}`);
  }
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ManifestError(`${what} is not valid JSON`);
  }
}

function validate<T>(schema: z.ZodType<T>, document: unknown, what: string): T {
  const result = schema.safeParse(document);
  if (!result.success)
    throw new ManifestError(
      `invalid ${what}: ${result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`,
    );
  return result.data;
}
