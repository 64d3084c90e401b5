import { createHash } from 'node:crypto';
import type { DelegatedSubjects } from '../auth/revocation.js';
import type { TokenService } from '../auth/token-service.js';
import type { DeployStore } from './deploy-store.js';
import type { NodeRecord } from './deploy-types.js';

const SUBJECT_PREFIX = 'deploy-node:';

export interface NodePullToken {
  token: string;
  expiresIn: number;
}

/**
 * A node's pull token: an access token of the registry for the subject `deploy-node:<name>`, granting pull,
 * and nothing else, on the repositories of the replicas assigned to the node when it was minted; short-lived
 * (auth.token.ttlSeconds), and current only while the node keeps the credential it had then (the bearer
 * guard's revocation check asks here): a node removed, or joined again, makes its tokens useless.
 */
export class NodePullTokens implements DelegatedSubjects {
  constructor(private readonly store: DeployStore) {}

  owns(subject: string): boolean {
    return subject.startsWith(SUBJECT_PREFIX);
  }

  async revision(subject: string): Promise<string | undefined> {
    const node = await this.store.node(subject.slice(SUBJECT_PREFIX.length));
    return node && revisionOf(node);
  }

  /** A pull token on these repositories; null when the registry has no auth (pulls need none). */
  mint(tokens: TokenService | undefined, node: NodeRecord, repositories: readonly string[]): NodePullToken | null {
    if (!tokens) return null;
    const issued = tokens.issueAccessToken(
      `${SUBJECT_PREFIX}${node.name}`,
      [...new Set(repositories)].map((name) => ({ type: 'repository', name, actions: ['pull'] })),
      revisionOf(node),
    );
    return { token: issued.token, expiresIn: issued.expiresIn };
  }
}

/** Changed by each join (a new credential); derived, so that a token's reader learns nothing of the credential's hash. */
function revisionOf(node: NodeRecord): string {
  return createHash('sha256').update(`pull-token:${node.credentialHash}`).digest('base64url').slice(0, 22);
}
