import type { Identity } from './identities.js';
import { compilePattern } from './patterns.js';
import { ruleApplies, ruleCovers, type PermissionRule, type PermissionStore, type RuleAction } from './permissions.js';
import { REPOSITORY_ACTIONS, type Access } from './scope.js';

/** Decides what an identity may do. Default deny: only what a rule (or the admin role) grants is allowed. */
export interface Authorizer {
  /** The subset of `requested` this identity is allowed, with empty entries dropped. Never throws for asking too much. */
  grant(identity: Identity, requested: readonly Access[]): Promise<Access[]>;
  /** The rules that apply to the identity, for the effective-permissions query. */
  applicableRules(identity: Identity): Promise<PermissionRule[]>;
  /**
   * Which repositories the identity's catalog shows: undefined for all of them (admins); otherwise those
   * matching one of its `catalog` rules that it may also pull.
   */
  catalogFilter(identity: Identity): Promise<((repository: string) => boolean) | undefined>;
}

export class RuleAuthorizer implements Authorizer {
  constructor(private readonly rules: PermissionStore) {}

  async grant(identity: Identity, requested: readonly Access[]): Promise<Access[]> {
    const rules = identity.admin ? [] : await this.applicableRules(identity);
    return requested
      .map((access) => ({ ...access, actions: access.actions.filter((action) => allowed(identity, rules, access, action)) }))
      .filter((access) => access.actions.length > 0);
  }

  async applicableRules(identity: Identity): Promise<PermissionRule[]> {
    return (await this.rules.list()).filter((rule) => ruleApplies(rule, identity));
  }

  async catalogFilter(identity: Identity): Promise<((repository: string) => boolean) | undefined> {
    if (identity.admin) return undefined;
    const rules = await this.applicableRules(identity);
    const patterns = (action: RuleAction) =>
      rules.filter((rule) => rule.actions.includes(action)).map((rule) => compilePattern(rule.repositories));
    const listed = patterns('catalog');
    const pullable = [...patterns('pull'), ...patterns('*')];
    return (repository) => listed.some((pattern) => pattern.test(repository)) && pullable.some((pattern) => pattern.test(repository));
  }
}

function allowed(identity: Identity, rules: readonly PermissionRule[], access: Access, action: string): boolean {
  const catalog = access.type === 'registry' && access.name === 'catalog';
  if (identity.admin) return access.type === 'repository' ? isRepositoryAction(action) : catalog;
  if (catalog) return rules.some((rule) => rule.actions.includes('catalog'));
  if (access.type !== 'repository' || !isRepositoryAction(action)) return false;
  const granted = new Set(rules.filter((rule) => ruleCovers(rule, access.name)).flatMap((rule) => rule.actions));
  // `*` asked for is granted only to someone who holds every action.
  if (action === '*') return granted.has('*') || REPOSITORY_ACTIONS.every((each) => granted.has(each));
  return granted.has('*') || granted.has(action as RuleAction);
}

function isRepositoryAction(action: string): boolean {
  return action === '*' || (REPOSITORY_ACTIONS as readonly string[]).includes(action);
}
