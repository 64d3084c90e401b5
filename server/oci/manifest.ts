import { z } from 'zod';
import { RegistryError } from '../errors.js';
import { parseDigest } from './digest.js';
import { IMAGE_MANIFEST_TYPES, INDEX_TYPES, MediaType, baseMediaType } from './media-types.js';

const descriptorSchema = z.looseObject({
  mediaType: z.string().min(1),
  digest: z.string().min(1),
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  artifactType: z.string().optional(),
  platform: z
    .looseObject({ architecture: z.string(), os: z.string(), variant: z.string().optional() })
    .optional(),
});

const imageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

const indexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

export type Descriptor = z.infer<typeof descriptorSchema>;

export interface ManifestReferences {
  /** Blobs that must be linked to the repository: config and layers (foreign layers excluded). */
  blobs: string[];
  /** Child manifests that must already exist in the repository (index entries). */
  manifests: string[];
}

export interface ParsedManifest {
  mediaType: string;
  kind: 'image' | 'index';
  references: ManifestReferences;
  subject?: string;
  /** The artifact type a referrers listing shows: artifactType, else the config media type of an image. */
  artifactType?: string;
  annotations?: Record<string, string>;
  /** Index entries, used to pick a platform for clients that cannot read an index. */
  children: Descriptor[];
}

// Clients often send these instead of the real manifest type; the body's mediaType then decides.
const GENERIC_CONTENT_TYPES = new Set(['application/json', 'application/octet-stream']);

export function parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
  const document = parseJsonObject(body);
  const mediaType = resolveMediaType(document, baseMediaType(contentType));
  if (IMAGE_MANIFEST_TYPES.has(mediaType)) return parseImageManifest(document, mediaType);
  if (INDEX_TYPES.has(mediaType)) return parseIndex(document, mediaType);
  if (mediaType === MediaType.dockerSchema1 || mediaType === MediaType.dockerSchema1Signed) {
    throw invalid('Docker schema 1 manifests are not supported; push with a current client (schema 2 or OCI)');
  }
  throw invalid(`unsupported manifest media type ${mediaType}`);
}

function parseJsonObject(body: Buffer): Record<string, unknown> {
  let document: unknown;
  try {
    document = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw invalid(`manifest is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw invalid('manifest must be a JSON object');
  }
  return document as Record<string, unknown>;
}

function resolveMediaType(document: Record<string, unknown>, contentType: string | undefined): string {
  const declared = typeof document.mediaType === 'string' ? document.mediaType : undefined;
  const fromHeader = contentType && !GENERIC_CONTENT_TYPES.has(contentType) ? contentType : undefined;
  if (fromHeader && declared && fromHeader !== declared) {
    throw invalid(`Content-Type ${fromHeader} does not match the manifest's mediaType ${declared}`);
  }
  const mediaType = fromHeader ?? declared ?? inferOciType(document);
  if (!mediaType) throw invalid('manifest media type unknown: send a Content-Type header or a mediaType field');
  return mediaType;
}

// An OCI manifest may omit mediaType; its shape then says what it is.
function inferOciType(document: Record<string, unknown>): string | undefined {
  if ('config' in document) return MediaType.ociManifest;
  if ('manifests' in document) return MediaType.ociIndex;
  return undefined;
}

function parseImageManifest(document: Record<string, unknown>, mediaType: string): ParsedManifest {
  const manifest = validate(imageManifestSchema, document);
  const descriptors = [manifest.config, ...manifest.layers];
  descriptors.forEach(assertDescriptorDigest);
  const blobs = descriptors.filter((descriptor) => !isForeignLayer(descriptor)).map((descriptor) => descriptor.digest);
  return {
    mediaType,
    kind: 'image',
    references: { blobs: unique(blobs), manifests: [] },
    subject: subjectDigest(manifest.subject),
    artifactType: manifest.artifactType ?? manifest.config.mediaType,
    annotations: manifest.annotations,
    children: [],
  };
}

function parseIndex(document: Record<string, unknown>, mediaType: string): ParsedManifest {
  const index = validate(indexSchema, document);
  index.manifests.forEach(assertDescriptorDigest);
  return {
    mediaType,
    kind: 'index',
    references: { blobs: [], manifests: unique(index.manifests.map((child) => child.digest)) },
    subject: subjectDigest(index.subject),
    artifactType: index.artifactType,
    annotations: index.annotations,
    children: index.manifests,
  };
}

function subjectDigest(subject: Descriptor | undefined): string | undefined {
  if (!subject) return undefined;
  assertDescriptorDigest(subject);
  return subject.digest;
}

// Foreign (Windows base) and non-distributable layers live elsewhere; the registry never holds them.
function isForeignLayer(descriptor: Descriptor): boolean {
  const external =
    descriptor.mediaType === MediaType.dockerForeignLayer || descriptor.mediaType.startsWith(MediaType.ociNondistributableLayerPrefix);
  return external && (descriptor.urls?.length ?? 0) > 0;
}

function assertDescriptorDigest(descriptor: Descriptor): void {
  try {
    parseDigest(descriptor.digest);
  } catch {
    throw invalid(`descriptor has an invalid digest: ${descriptor.digest}`);
  }
}

function validate<T>(schema: z.ZodType<T>, document: unknown): T {
  const result = schema.safeParse(document);
  if (result.success) return result.data;
  const first = result.error.issues[0];
  const where = first?.path.length ? first.path.join('.') : 'manifest';
  throw invalid(`${where}: ${first?.message ?? 'invalid'}`);
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function invalid(message: string): RegistryError {
  return new RegistryError('MANIFEST_INVALID', 400, message);
}
