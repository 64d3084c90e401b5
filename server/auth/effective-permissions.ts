import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { Authorizer } from './authorizer.js';
import { ANONYMOUS, type IdentityStore } from './identities.js';
import type { PermissionRule } from './permissions.js';
import { CATALOG_ACCESS, REPOSITORY_ACTIONS, repositoryAccess } from './scope.js';

export interface EffectivePermissions {
  account: string;
  admin: boolean;
  groups: string[];
  /** Every rule that applies to the account (directly, through a group, or to everyone). */
  rules: PermissionRule[];
  /** Whether it may list the catalog (admins: all of it; others: what their catalog rules match and they may pull). */
  catalog: boolean;
  /** With a repository named: the actions the account may perform there. */
  repository?: { name: string; actions: string[] };
}

/** What an account (or `anonymous`) may do: the question admins ask when someone reports a "denied". */
export async function effectivePermissions(
  identities: IdentityStore,
  authorizer: Authorizer,
  account: string,
  repository?: string,
): Promise<EffectivePermissions> {
  const identity = account === 'anonymous' ? ANONYMOUS : await identities.lookup(account);
  if (!identity) throw new CodedError(DistributionErrors.NAME_UNKNOWN, `no account named ${account} (or it has expired)`);
  const rules = await authorizer.applicableRules(identity);
  const catalog = (await authorizer.grant(identity, [CATALOG_ACCESS])).length > 0;
  const result: EffectivePermissions = { account, admin: identity.admin, groups: identity.groups, rules, catalog };
  if (repository !== undefined) {
    const [granted] = await authorizer.grant(identity, [repositoryAccess(repository, [...REPOSITORY_ACTIONS])]);
    result.repository = { name: repository, actions: granted?.actions ?? [] };
  }
  return result;
}
