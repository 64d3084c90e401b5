/**
 * Docker token-auth scopes and access entries: `repository:team-a/app:pull,push` on the wire, and the same
 * thing as `{type, name, actions}` in a token's `access` claim.
 */
export const REPOSITORY_ACTIONS = ['pull', 'push', 'delete'] as const;
export type RepositoryAction = (typeof REPOSITORY_ACTIONS)[number];

export interface Access {
  type: string;
  name: string;
  actions: string[];
}

export const CATALOG_ACCESS: Access = { type: 'registry', name: 'catalog', actions: ['*'] };

/**
 * Parses one scope. The name may contain `:` (a registry host with a port), so the type is everything before
 * the first colon and the actions everything after the last. Unparseable scopes yield undefined: asking for
 * something odd is never an error, it is simply not granted.
 */
export function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter((action) => action !== '');
  const name = scope.slice(first + 1, last);
  if (name === '' || actions.length === 0) return undefined;
  return { type: scope.slice(0, first), name, actions };
}

/** Scopes as clients send them: repeated `scope` parameters, each possibly holding several space-separated scopes. */
export function parseScopes(values: readonly string[]): Access[] {
  return values
    .flatMap((value) => value.split(' '))
    .map(parseScope)
    .filter((access): access is Access => access !== undefined);
}

export function formatScope(access: Access): string {
  return `${access.type}:${access.name}:${access.actions.join(',')}`;
}

export function repositoryAccess(name: string, actions: string[]): Access {
  return { type: 'repository', name, actions };
}

/** Whether `granted` (a token's access claim) covers `action` on the resource. */
export function covers(granted: readonly Access[], type: string, name: string, action: string): boolean {
  return granted.some(
    (entry) => entry.type === type && entry.name === name && (entry.actions.includes(action) || entry.actions.includes('*')),
  );
}
