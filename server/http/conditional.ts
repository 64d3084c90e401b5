/**
 * Whether an If-None-Match header matches an entity tag (RFC 9110 13.1.2): a list of tags, weak or strong,
 * compared weakly, or `*`.
 */
export function matchesIfNoneMatch(header: string, etag: string): boolean {
  if (header === '') return false;
  return header.split(',').some((candidate) => {
    const tag = candidate.trim();
    return tag === '*' || tag.replace(/^W\//, '') === etag;
  });
}
