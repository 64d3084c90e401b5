import { CodedError, DistributionErrors } from '../platform/errors.js';

/**
 * The distribution spec's grammar for a repository `<name>` (lowercase path components of alphanumerics
 * joined by `.`, `_`, `__` or runs of `-`, separated by `/`) and for a tag.
 */
const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
export const NAME_COMPONENT_GRAMMAR = new RegExp(`^${NAME_COMPONENT}$`);
const NAME_GRAMMAR = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_GRAMMAR = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
// Distribution's limit, kept so names that work here also work when mirrored elsewhere.
const NAME_MAX_LENGTH = 255;

export function isValidRepositoryName(name: string): boolean {
  return name.length <= NAME_MAX_LENGTH && NAME_GRAMMAR.test(name);
}

export function isValidTag(tag: string): boolean {
  return TAG_GRAMMAR.test(tag);
}

export function assertRepositoryName(name: string): void {
  if (!isValidRepositoryName(name)) {
    throw new CodedError(DistributionErrors.NAME_INVALID, 'invalid repository name', {
      detail: {
        name,
        rule: 'lowercase path components [a-z0-9] joined by ".", "_", "__" or "-", separated by "/", at most 255 characters',
      },
    });
  }
}

export function assertTag(tag: string): void {
  if (!isValidTag(tag)) {
    throw new CodedError(DistributionErrors.TAG_INVALID, 'invalid tag', { detail: { tag, rule: '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}' } });
  }
}
