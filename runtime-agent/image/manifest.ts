import { z } from 'zod';
import { digestOf, isDigest } from '../digest.js';
import { isImageManifestMediaType, isIndexMediaType } from '../media-types.js';
import { formatPlatform, platformRank, type Platform } from '../platform.js';

/** Manifests, indexes and image configs as the agent reads them; anything malformed is refused with a reason. */

export class ManifestError extends Error {}

const digest = z.string().refine(isDigest, 'not a digest');
const platformSchema = z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() });

const descriptorSchema = z.object({
  mediaType: z.string(),
  digest,
  size: z.number().int().nonnegative(),
  platform: platformSchema.optional(),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

const imageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;

const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema),
});

const stringList = z.array(z.string()).nullish();

/** The runtime part of an image config (`config` in the OCI image spec); docker writes null for unset fields. */
const runtimeConfigSchema = z.object({
  User: z.string().nullish(),
  Env: stringList,
  Entrypoint: stringList,
  Cmd: stringList,
  WorkingDir: z.string().nullish(),
  StopSignal: z.string().nullish(),
  ExposedPorts: z.record(z.string(), z.unknown()).nullish(),
  Volumes: z.record(z.string(), z.unknown()).nullish(),
  Labels: z.record(z.string(), z.string()).nullish(),
});
export type ImageRuntimeConfig = z.infer<typeof runtimeConfigSchema>;

const imageConfigSchema = z.object({
  created: z.string().optional(),
  config: runtimeConfigSchema.nullish(),
  os: z.string(),
  architecture: z.string(),
  variant: z.string().optional(),
  rootfs: z.object({ type: z.literal('layers'), diff_ids: z.array(digest) }),
});
export type ImageConfig = z.infer<typeof imageConfigSchema>;

export type ParsedManifest = { kind: 'image'; manifest: ImageManifest } | { kind: 'index'; manifests: Descriptor[] };

/** Classifies by the Content-Type, else by the document's own mediaType, else by its shape. */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  const document = parseJson(bytes, 'manifest') as { mediaType?: unknown; manifests?: unknown; schemaVersion?: unknown };
  if (document.schemaVersion === 1) throw new ManifestError('schema 1 manifests are not supported');
  const mediaType = [contentType, document.mediaType].find((type): type is string => typeof type === 'string' && (isIndexMediaType(type) || isImageManifestMediaType(type)));
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
  if (!result.success) throw new ManifestError(`invalid ${what}: ${result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  return result.data;
}
