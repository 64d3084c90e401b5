import type { z } from 'zod';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { imageManifestSchema, indexSchema, type Descriptor } from '../../oci/manifest.js';
import { IMAGE_MANIFEST_TYPES, INDEX_TYPES, MediaType, baseMediaType } from '../../oci/media-types.js';

/** A digest with the size a descriptor declares for it. */
export interface SizedDigest {
  digest: string;
  size: number;
}

export interface ManifestReferences {
  /** Blobs that must be linked to the repository: config and layers (foreign layers excluded). */
  blobs: SizedDigest[];
  /** Child manifests that must already exist in the repository (index entries). */
  manifests: SizedDigest[];
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
  /** Every `urls` entry of every descriptor (config, layers, index entries, subject). */
  urls: string[];
  /** True when the body declares its own mediaType: then every push of these bytes resolves the same type. */
  declaresMediaType: boolean;
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

// Far deeper than any manifest (annotations sit at depth 3) and shallow enough for every client's parser:
// Go's encoding/json stops at 10,000 levels, Python's recursion limit is about 1,000.
const MAX_NESTING_DEPTH = 64;

function parseJsonObject(body: Buffer): Record<string, unknown> {
  const text = decodeUtf8(body);
  assertNestingDepth(body);
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw invalid(`manifest is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw invalid('manifest must be a JSON object');
  }
  return document as Record<string, unknown>;
}

// Node's own decoding would replace invalid sequences with U+FFFD, silently storing a manifest whose
// digest covers bytes other clients refuse to parse. The BOM is kept so that JSON.parse refuses it too.
function decodeUtf8(body: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    throw invalid('manifest is not valid UTF-8');
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPENERS = new Set([0x5b, 0x7b]);
const CLOSERS = new Set([0x5d, 0x7d]);

/**
 * Counts bracket nesting outside strings before the body is parsed, so that a deep body costs one linear
 * scan and never reaches a recursive step (V8's JSON.parse copes with 100,000 levels; the clients that would
 * pull it, and any walk of the document, do not). Bytes suffice: no byte of a multi-byte UTF-8 sequence is
 * ASCII.
 */
function assertNestingDepth(body: Buffer): void {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < body.length; index++) {
    const byte = body[index]!;
    if (inString) {
      if (byte === BACKSLASH) index++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (OPENERS.has(byte)) {
      if (++depth > MAX_NESTING_DEPTH) throw invalid(`manifest nests deeper than ${MAX_NESTING_DEPTH} levels`);
    } else if (CLOSERS.has(byte)) {
      depth--;
    }
  }
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
  const blobs = descriptors.filter((descriptor) => !isForeignLayer(descriptor));
  return {
    mediaType,
    kind: 'image',
    references: { blobs: uniqueSized(blobs), manifests: [] },
    subject: manifest.subject?.digest,
    artifactType: manifest.artifactType ?? manifest.config.mediaType,
    annotations: manifest.annotations,
    children: [],
    urls: urlsOf([...descriptors, ...optional(manifest.subject)]),
    declaresMediaType: typeof document.mediaType === 'string',
  };
}

function parseIndex(document: Record<string, unknown>, mediaType: string): ParsedManifest {
  const index = validate(indexSchema, document);
  return {
    mediaType,
    kind: 'index',
    references: { blobs: [], manifests: uniqueSized(index.manifests) },
    subject: index.subject?.digest,
    artifactType: index.artifactType,
    annotations: index.annotations,
    children: index.manifests,
    urls: urlsOf([...index.manifests, ...optional(index.subject)]),
    declaresMediaType: typeof document.mediaType === 'string',
  };
}

// Foreign (Windows base) and non-distributable layers live elsewhere; the registry never holds them.
function isForeignLayer(descriptor: Descriptor): boolean {
  const external =
    descriptor.mediaType === MediaType.dockerForeignLayer || descriptor.mediaType.startsWith(MediaType.ociNondistributableLayerPrefix);
  return external && (descriptor.urls?.length ?? 0) > 0;
}

function validate<T>(schema: z.ZodType<T>, document: unknown): T {
  const result = schema.safeParse(document);
  if (result.success) return result.data;
  const first = result.error.issues[0];
  const where = first?.path.length ? first.path.join('.') : 'manifest';
  throw invalid(`${where}: ${first?.message ?? 'invalid'}`);
}

/** One entry per distinct digest and declared size: a digest listed twice with two sizes is checked twice. */
function uniqueSized(descriptors: Descriptor[]): SizedDigest[] {
  const seen = new Map<string, SizedDigest>();
  for (const { digest, size } of descriptors) seen.set(`${digest} ${size}`, { digest, size });
  return [...seen.values()];
}

function urlsOf(descriptors: Descriptor[]): string[] {
  return descriptors.flatMap((descriptor) => descriptor.urls ?? []);
}

function optional<T>(value: T | undefined): T[] {
  return value === undefined ? [] : [value];
}

function invalid(message: string): CodedError {
  return new CodedError(DistributionErrors.MANIFEST_INVALID, message);
}
