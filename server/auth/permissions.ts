import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RegistryKeys } from '../metadata/keys.js';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { ROBOT_PREFIX, type Identity } from './identities.js';
import { compilePattern } from './patterns.js';
import { REPOSITORY_ACTIONS } from './scope.js';

/** `*` is every repository action; `catalog` (never part of `*`) lets the subject list, in `/v2/_catalog`, the matching repositories it may pull. */
export type RuleAction = (typeof REPOSITORY_ACTIONS)[number] | '*' | 'catalog';

/** Grants `actions` on the repositories matching `repositories` to a subject. */
export interface PermissionRule {
  id: string;
  /** `user:<name>`, `robot:<name>`, `group:<name>` or `anonymous` (everyone, logged in or not). */
  subject: string;
  repositories: string;
  actions: RuleAction[];
}

export type NewPermissionRule = Omit<PermissionRule, 'id'>;

const SUBJECT = /^(?:(?:user|robot|group):[a-z0-9][a-z0-9._-]{0,63}|anonymous)$/;
const PATTERN = /^[a-z0-9*][a-z0-9._\-/*]*$/;

/** Checks a rule before it is stored, so a stored rule always means what it says. */
export function validateRule(rule: NewPermissionRule): NewPermissionRule {
  if (!SUBJECT.test(rule.subject)) throw invalid('subject must be user:<name>, robot:<name>, group:<name> or anonymous');
  if (!PATTERN.test(rule.repositories)) throw invalid('repositories must be a repository name pattern such as team-a/** or */public-*');
  const actions = [...new Set(rule.actions)];
  if (
    actions.length === 0 ||
    !actions.every((action) => action === '*' || action === 'catalog' || (REPOSITORY_ACTIONS as readonly string[]).includes(action))
  ) {
    throw invalid(
      'actions must be pull, push, delete, * (all three) or catalog (list the matching repositories it may pull in /v2/_catalog)',
    );
  }
  // Anonymous write access would let anyone on the network replace images.
  if (rule.subject === 'anonymous' && actions.some((action) => action !== 'pull')) throw invalid('anonymous rules may only grant pull');
  return { subject: rule.subject, repositories: rule.repositories, actions };
}

export function ruleApplies(rule: PermissionRule, identity: Identity): boolean {
  const [kind, name] = rule.subject.split(':') as [string, string | undefined];
  switch (kind) {
    case 'anonymous':
      return true;
    case 'user':
      return identity.kind === 'user' && identity.name === name;
    case 'robot':
      return identity.kind === 'robot' && identity.name === `${ROBOT_PREFIX}${name}`;
    case 'group':
      return identity.kind !== 'anonymous' && name !== undefined && identity.groups.includes(name);
    default:
      return false;
  }
}

export function ruleCovers(rule: PermissionRule, repository: string): boolean {
  return compilePattern(rule.repositories).test(repository);
}

/** The rules, in one Redis hash keyed by rule id: few enough to read whole for every decision. */
export class PermissionStore {
  private readonly key: string;
  private readonly generationsKey: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    const keys = new RegistryKeys(prefix);
    this.key = keys.authRules();
    this.generationsKey = keys.authGenerations();
  }

  async add(rule: NewPermissionRule): Promise<PermissionRule> {
    const stored: PermissionRule = { id: randomBytes(6).toString('hex'), ...validateRule(rule) };
    await this.redis.hset(this.key, stored.id, JSON.stringify(stored));
    return stored;
  }

  /** Removing a rule revokes the tokens its subject was issued before (see revocation.ts): they may rest on it. */
  async remove(id: string): Promise<boolean> {
    const json = await this.redis.hget(this.key, id);
    if (json === null) return false;
    const { subject } = JSON.parse(json) as PermissionRule;
    const [[, removed]] = (await this.redis.multi().hdel(this.key, id).hincrby(this.generationsKey, subject, 1).exec()) as [[null, number]];
    return removed === 1;
  }

  async list(): Promise<PermissionRule[]> {
    const rules = Object.values(await this.redis.hgetall(this.key)).map((json) => JSON.parse(json) as PermissionRule);
    return rules.sort((a, b) => a.subject.localeCompare(b.subject) || a.repositories.localeCompare(b.repositories));
  }
}

function invalid(message: string): CodedError {
  return new CodedError(DistributionErrors.ACCOUNT_INVALID, message);
}
