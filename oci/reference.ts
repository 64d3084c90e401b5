import { isDigest } from './digest.js';
import { isValidRepositoryName, isValidTag } from './names.js';

/**
 * Image references `host[:port]/name[:tag][@digest]`, normalised the way docker does: `busybox` is
 * `docker.io/library/busybox:latest`.
 */
export const DEFAULT_REGISTRY = 'docker.io';
export const DEFAULT_TAG = 'latest';

const REGISTRY_HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;

/** Named so it never shadows the JavaScript global `ReferenceError`. */
export class InvalidReferenceError extends Error {}

export interface ImageReference {
  /** Registry host with optional port, e.g. `127.0.0.1:5000` or `docker.io`. */
  registry: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  repository: string;
  tag?: string;
  digest?: string;
}

export function parseReference(input: string): ImageReference {
  const fail = (why: string): never => {
    throw new InvalidReferenceError(`invalid reference format ${JSON.stringify(input)}: ${why}`);
  };
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) fail('bad digest');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) fail('bad tag');
  }
  const { registry, repository } = splitRegistry(rest);
  if (!REGISTRY_HOST.test(registry)) fail('bad registry host');
  if (!isValidRepositoryName(repository)) fail('repository name must be lowercase path components, at most 255 characters');
  return { registry, repository, tag: tag ?? (digest ? undefined : DEFAULT_TAG), digest };
}

/** Docker's rule: the first component is a registry only if it looks like a host (a dot, a port, or localhost). */
function splitRegistry(name: string): { registry: string; repository: string } {
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  if (first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    const registry = first === 'index.docker.io' ? DEFAULT_REGISTRY : first;
    return { registry, repository: withLibraryPrefix(registry, name.slice(slash + 1)) };
  }
  return { registry: DEFAULT_REGISTRY, repository: withLibraryPrefix(DEFAULT_REGISTRY, name) };
}

function withLibraryPrefix(registry: string, repository: string): string {
  return registry === DEFAULT_REGISTRY && !repository.includes('/') ? `library/${repository}` : repository;
}

/** The repository as docker shows it: Docker Hub's `library/` and `docker.io/` are left out. */
export function familiarName(reference: Pick<ImageReference, 'registry' | 'repository'>): string {
  if (reference.registry !== DEFAULT_REGISTRY) return `${reference.registry}/${reference.repository}`;
  return reference.repository.startsWith('library/') ? reference.repository.slice('library/'.length) : reference.repository;
}

/** `name:tag`, `name@digest` or `name:tag@digest`, in familiar form. */
export function formatReference(reference: ImageReference): string {
  return `${familiarName(reference)}${reference.tag ? `:${reference.tag}` : ''}${reference.digest ? `@${reference.digest}` : ''}`;
}

/** The fully qualified form, `docker.io/library/busybox:latest`. */
export function canonicalReference(reference: ImageReference): string {
  return `${reference.registry}/${reference.repository}${reference.tag ? `:${reference.tag}` : ''}${reference.digest ? `@${reference.digest}` : ''}`;
}
