import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RegistryKeys } from '../metadata/keys.js';
import { ANONYMOUS, ROBOT_PREFIX, type Identity, type IdentityStore } from './identities.js';

/**
 * Revocation of tokens already issued, without a deny list: every subject a rule can name (`user:alice`,
 * `robot:ci`, `group:team-a`, `anonymous`) has a generation in one Redis hash, bumped by whatever takes
 * access away from it: deleting or changing the account (password, groups, role), deleting a robot, removing
 * a rule for that subject. An access token carries the revision of everything it was granted through (its
 * account's, its groups' and the anonymous generation); a refresh token carries its account's generation.
 * A token whose revision is no longer current is refused, as is one whose account no longer exists.
 */

/** The subject under which an identity's own generation is kept: the same names rules use. */
export function subjectOf(identity: Identity): string {
  if (identity.kind === 'anonymous') return 'anonymous';
  return identity.kind === 'robot' ? `robot:${identity.name.slice(ROBOT_PREFIX.length)}` : `user:${identity.name}`;
}

/**
 * Token subjects that are not accounts, whose tokens another part of the registry issues and revokes (a
 * build job's push token, current while that attempt of the job runs; a deployment node's pull token).
 */
export interface DelegatedSubjects {
  owns(subject: string): boolean;
  /** The current revision of the subject; undefined: none of its tokens is current. */
  revision(subject: string): Promise<string | undefined>;
}

/** Several parts' delegated subjects together, each subject answered by the part that owns it. */
export function delegatedSubjects(...parts: DelegatedSubjects[]): DelegatedSubjects {
  return {
    owns: (subject) => parts.some((part) => part.owns(subject)),
    revision: async (subject) => parts.find((part) => part.owns(subject))?.revision(subject),
  };
}

interface CachedRevision {
  /** undefined: the account no longer exists (or has expired), so none of its tokens is current. */
  revision: Promise<string | undefined>;
  fetchedAt: number;
}

/**
 * Answers "is this token still current?" on the request path. The current revision of each subject is kept
 * in process for `cacheMs` (so a revocation takes at most that long to reach every replica), which makes the
 * check one map lookup per request and one Redis round trip per subject per `cacheMs`.
 */
export class RevocationChecker {
  private readonly cache = new Map<string, CachedRevision>();
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly identities: IdentityStore,
    private readonly cacheMs: number,
    private readonly delegated: DelegatedSubjects,
    private readonly now: () => number = Date.now,
  ) {
    this.key = new RegistryKeys(prefix).authGenerations();
  }

  /** The revision to put in an access token issued now to this identity. */
  async revisionOf(identity: Identity): Promise<string> {
    const subjects = [
      ...(identity.kind === 'anonymous' ? [] : [subjectOf(identity)]),
      ...[...new Set(identity.groups)].sort().map((group) => `group:${group}`),
      'anonymous',
    ];
    const generations = await this.redis.hmget(this.key, ...subjects);
    const input = JSON.stringify(subjects.map((subject, index) => [subject, Number(generations[index] ?? 0)]));
    return createHash('sha256').update(input).digest('base64url').slice(0, 22);
  }

  /** The generation to put in a refresh token issued now to this account, and to compare it with later. */
  async accountGeneration(identity: Identity): Promise<number> {
    return Number((await this.redis.hget(this.key, subjectOf(identity))) ?? 0);
  }

  /**
   * Whether an access token of ours for `subject` ('' for anonymous) with this revision, issued at
   * `issuedAt` (seconds), is still current. A mismatch with a cached revision older than the token is
   * checked again in Redis: the token may reflect a change (a new password, say) the cache has not seen yet.
   */
  async isCurrent(subject: string, revision: string | undefined, issuedAt: number): Promise<boolean> {
    if (revision === undefined) return false;
    let entry = this.cached(subject) ?? this.fetch(subject);
    if ((await entry.revision) === revision) return true;
    const issuedAtMs = issuedAt * 1000 + 1000;
    if (entry.fetchedAt >= issuedAtMs) return false;
    const latest = this.cache.get(subject);
    entry = latest && latest.fetchedAt > entry.fetchedAt ? latest : this.fetch(subject);
    return (await entry.revision) === revision;
  }

  private cached(subject: string): CachedRevision | undefined {
    const entry = this.cache.get(subject);
    return entry && this.now() - entry.fetchedAt < this.cacheMs ? entry : undefined;
  }

  private fetch(subject: string): CachedRevision {
    if (this.cache.size >= 10_000) this.sweep();
    const entry: CachedRevision = { fetchedAt: this.now(), revision: this.currentRevision(subject) };
    this.cache.set(subject, entry);
    // A failed lookup (Redis down) is not remembered: the next request tries again.
    entry.revision.catch(() => {
      if (this.cache.get(subject) === entry) this.cache.delete(subject);
    });
    return entry;
  }

  private async currentRevision(subject: string): Promise<string | undefined> {
    if (this.delegated.owns(subject)) return this.delegated.revision(subject);
    const identity = subject === '' ? ANONYMOUS : await this.identities.lookup(subject);
    return identity && this.revisionOf(identity);
  }

  private sweep(): void {
    for (const [subject, entry] of this.cache) if (this.now() - entry.fetchedAt >= this.cacheMs) this.cache.delete(subject);
  }
}
