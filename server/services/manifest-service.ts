import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { MetadataStore, StoredManifest } from '../metadata/metadata-store.js';
import type { DescriptorUrlPolicy } from '../oci/descriptor-urls.js';
import { createDigester, parseDigest } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/manifest.js';
import { parseManifest, type ParsedManifest } from '../oci/manifest.js';
import { IMAGE_MANIFEST_TYPES, INDEX_TYPES } from '../../oci/media-types.js';
import { assertTag, isValidTag } from '../../oci/names.js';
import { NO_EVENTS, type EventOrigin, type EventSink } from '../webhooks/events.js';

export type Reference = { tag: string } | { digest: string };

export interface PutManifestOutcome {
  digest: string;
  subject?: string;
}

// The platform served to a client that asks for a manifest by tag but cannot read an index, as Distribution does.
const DEFAULT_PLATFORM = { os: 'linux', architecture: 'amd64' };

export function parseReference(reference: string): Reference {
  // A tag cannot contain ':', so a reference with one is meant as a digest: a malformed one is DIGEST_INVALID, not TAG_INVALID.
  if (reference.includes(':')) return { digest: parseDigest(reference).value };
  assertTag(reference);
  return { tag: reference };
}

/**
 * The reference of a GET or HEAD: one that is no valid tag names no manifest, and the spec answers a manifest
 * that is not found 404 (as Distribution and zot do); only a PUT refuses it as TAG_INVALID.
 */
export function parseReadReference(reference: string): Reference {
  if (reference.includes(':') || isValidTag(reference)) return parseReference(reference);
  throw new CodedError(DistributionErrors.MANIFEST_UNKNOWN, undefined, { detail: { tag: reference } });
}

export class ManifestService {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly urlPolicy: DescriptorUrlPolicy,
    private readonly events: EventSink = NO_EVENTS,
  ) {}

  async get(repository: string, reference: Reference, accept: string[], origin?: EventOrigin): Promise<StoredManifest> {
    const served = await this.acceptable(repository, reference, accept);
    const { mediaType, digest, content } = served;
    await this.events.emit({
      action: 'pull',
      repository,
      target: { mediaType, digest, size: content.length, tag: tagOf(reference) },
      origin,
    });
    return served;
  }

  private async acceptable(repository: string, reference: Reference, accept: string[]): Promise<StoredManifest> {
    const manifest = await this.find(repository, reference);
    if (isAcceptable(manifest.mediaType, accept)) return manifest;
    if (INDEX_TYPES.has(manifest.mediaType)) {
      const child = await this.platformChild(repository, manifest, accept);
      if (child) return child;
    }
    throw new CodedError(
      DistributionErrors.MANIFEST_UNKNOWN,
      `manifest is a ${manifest.mediaType}, which the Accept header does not allow`,
      {
        detail: { mediaType: manifest.mediaType, accept },
      },
    );
  }

  async put(
    repository: string,
    reference: Reference,
    contentType: string | undefined,
    body: Buffer,
    origin?: EventOrigin,
  ): Promise<PutManifestOutcome> {
    const parsed = parseManifest(body, contentType);
    this.urlPolicy.assertAllowed(parsed.urls);
    const algorithm = 'digest' in reference ? parseDigest(reference.digest).algorithm : 'sha256';
    const digest = `${algorithm}:${createDigester(algorithm).update(body).digest('hex')}`;
    if ('digest' in reference && reference.digest !== digest) {
      throw new CodedError(DistributionErrors.DIGEST_INVALID, 'manifest digest does not match the digest in the URL', {
        detail: { expected: reference.digest, actual: digest },
      });
    }
    const result = await this.metadata.putManifest({
      repository,
      digest,
      mediaType: parsed.mediaType,
      mediaTypeDeclared: parsed.declaresMediaType,
      content: body,
      tag: 'tag' in reference ? reference.tag : undefined,
      subject: parsed.subject,
      referrerDescriptor: JSON.stringify(referrerDescriptor(parsed, digest, body.length)),
      requiredBlobs: parsed.references.blobs,
      requiredManifests: parsed.references.manifests,
    });
    if (result.outcome === 'missing') {
      throw new CodedError(
        DistributionErrors.MANIFEST_BLOB_UNKNOWN,
        `manifest references ${result.digest}, which is not in this repository`,
        {
          detail: { digest: result.digest },
        },
      );
    }
    if (result.outcome === 'size-mismatch') {
      const { digest: named, declaredSize, storedSize } = result;
      throw new CodedError(
        DistributionErrors.MANIFEST_INVALID,
        `descriptor of ${named} declares ${declaredSize} bytes; the registry holds ${storedSize}`,
        {
          detail: { digest: named, declaredSize, storedSize },
        },
      );
    }
    await this.events.emit({
      action: 'push',
      repository,
      target: { mediaType: parsed.mediaType, digest, size: body.length, tag: tagOf(reference) },
      origin,
    });
    return { digest, subject: parsed.subject };
  }

  async delete(repository: string, reference: Reference, origin?: EventOrigin): Promise<void> {
    const deleted =
      'tag' in reference
        ? await this.metadata.deleteTag(repository, reference.tag)
        : await this.metadata.deleteManifest(repository, reference.digest);
    if (!deleted) throw new CodedError(DistributionErrors.MANIFEST_UNKNOWN, undefined, { detail: reference });
    await this.events.emit({
      action: 'delete',
      repository,
      target: { digest: 'digest' in reference ? reference.digest : '', tag: tagOf(reference) },
      origin,
    });
  }

  /** The referrers of a subject as an OCI index, optionally filtered by artifactType. */
  async referrers(repository: string, subject: string, artifactType?: string): Promise<{ manifests: Descriptor[] }> {
    const descriptors = (await this.metadata.listReferrers(repository, parseDigest(subject).value)).map(
      (json) => JSON.parse(json) as Descriptor,
    );
    const manifests = artifactType ? descriptors.filter((descriptor) => descriptor.artifactType === artifactType) : descriptors;
    manifests.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
    return { manifests };
  }

  private async find(repository: string, reference: Reference): Promise<StoredManifest> {
    const lookup = await this.metadata.getManifest(repository, reference);
    if (lookup.found) return lookup.manifest;
    if (!lookup.repositoryKnown) throw new CodedError(DistributionErrors.NAME_UNKNOWN, undefined, { detail: { name: repository } });
    throw new CodedError(DistributionErrors.MANIFEST_UNKNOWN, undefined, { detail: reference });
  }

  private async platformChild(repository: string, index: StoredManifest, accept: string[]): Promise<StoredManifest | undefined> {
    const children = parseManifest(index.content, index.mediaType).children;
    const match = children.find(
      (child) =>
        child.platform?.os === DEFAULT_PLATFORM.os &&
        child.platform.architecture === DEFAULT_PLATFORM.architecture &&
        IMAGE_MANIFEST_TYPES.has(child.mediaType) &&
        isAcceptable(child.mediaType, accept),
    );
    if (!match) return undefined;
    const lookup = await this.metadata.getManifest(repository, { digest: match.digest });
    return lookup.found ? lookup.manifest : undefined;
  }
}

function tagOf(reference: Reference): string | undefined {
  return 'tag' in reference ? reference.tag : undefined;
}

/** No Accept header means "anything"; otherwise the type, a wildcard, or a type/* range must be listed. */
function isAcceptable(mediaType: string, accept: string[]): boolean {
  if (accept.length === 0) return true;
  const family = `${mediaType.split('/')[0]}/*`;
  return accept.some((entry) => entry === mediaType || entry === '*/*' || entry === family);
}

function referrerDescriptor(parsed: ParsedManifest, digest: string, size: number): Descriptor {
  const descriptor: Descriptor = { mediaType: parsed.mediaType, digest, size };
  if (parsed.artifactType) descriptor.artifactType = parsed.artifactType;
  if (parsed.annotations) descriptor.annotations = parsed.annotations;
  return descriptor;
}
