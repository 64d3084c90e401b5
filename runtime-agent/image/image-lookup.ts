import { InvalidReferenceError, parseReference } from '../../oci/reference.js';
import { CodedError } from '../../platform/errors.js';
import { AgentErrors } from '../errors.js';
import type { ImageRecord, ImageStore } from './image-store.js';

/** The image a container is created from: by reference, or by a unique prefix of its id. */
export async function findImage(nameOrId: string, images: ImageStore): Promise<ImageRecord> {
  const [first] = await matchingImages(nameOrId, images);
  if (!first) throw new CodedError(AgentErrors.IMAGE_UNKNOWN, `No such image: ${nameOrId}`);
  return first;
}

/** Images named by `nameOrId`: one reference, or every reference of one image id (prefix). */
export async function matchingImages(nameOrId: string, images: ImageStore): Promise<ImageRecord[]> {
  const all = await images.list();
  const byReference = referenceKey(nameOrId);
  const exact = all.filter((record) => record.reference === byReference);
  if (exact.length > 0) return exact;
  const idPrefix = /^(sha256:)?([a-f0-9]{4,64})$/.exec(nameOrId)?.[2];
  const byId = idPrefix ? all.filter((record) => record.configDigest.slice('sha256:'.length).startsWith(idPrefix)) : [];
  if (byId.length === 0) throw new CodedError(AgentErrors.IMAGE_UNKNOWN, `No such image: ${nameOrId}`);
  if (new Set(byId.map((record) => record.configDigest)).size > 1)
    throw new CodedError(AgentErrors.IMAGE_AMBIGUOUS, `${nameOrId} matches several images`);
  return byId;
}

function referenceKey(text: string): string | undefined {
  try {
    const reference = parseReference(text);
    const name = `${reference.registry}/${reference.repository}`;
    return reference.digest ? `${name}@${reference.digest}` : `${name}:${reference.tag}`;
  } catch (error) {
    if (error instanceof InvalidReferenceError) return undefined;
    throw error;
  }
}
