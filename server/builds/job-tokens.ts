import type { Redis } from 'ioredis';
import type { DelegatedSubjects } from '../auth/revocation.js';
import type { TokenService } from '../auth/token-service.js';
import { BuildKeys } from './build-keys.js';

const SUBJECT_PREFIX = 'build-job:';

/**
 * A build job's push token: an access token of the registry for the subject `build-job:<id>`, granting
 * pull and push on the job's repository and its project's cache repository alone, current only while that attempt of the job runs (the bearer
 * guard's revocation check asks here), and short-lived (auth.token.ttlSeconds).
 */
export class JobTokens implements DelegatedSubjects {
  private readonly keys: BuildKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = new BuildKeys(prefix);
  }

  owns(subject: string): boolean {
    return subject.startsWith(SUBJECT_PREFIX);
  }

  async revision(subject: string): Promise<string | undefined> {
    const id = subject.slice(SUBJECT_PREFIX.length);
    const [state, attempt] = await this.redis.hmget(this.keys.job(id), 'state', 'attempt');
    return state === 'running' && attempt !== null ? revisionOf(id, Number(attempt)) : undefined;
  }

  /** A push token for this attempt of the job, on these repositories; null when the registry has no auth (pushes need none). */
  mint(tokens: TokenService | undefined, id: string, attempt: number, repositories: readonly string[]): string | null {
    if (!tokens) return null;
    return tokens.issueAccessToken(
      `${SUBJECT_PREFIX}${id}`,
      [...new Set(repositories)].map((name) => ({ type: 'repository', name, actions: ['pull', 'push'] })),
      revisionOf(id, attempt),
    ).token;
  }
}

function revisionOf(id: string, attempt: number): string {
  return `${id}.${attempt}`;
}
