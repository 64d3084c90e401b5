import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { Identity, IdentityStore } from './identities.js';
import type { LoginRateLimiter } from './rate-limit.js';
import type { RevocationChecker } from './revocation.js';
import { InvalidTokenError, type TokenService } from './token-service.js';

/**
 * Logs accounts in: rate limits first, then the identity stores, counting every failure. A failure counts
 * against the client's address always, and against an account only when it names one that exists (a wrong
 * password) or one a token of ours vouches for: what a client merely types in or forges can lock out
 * nobody but that client.
 */
export class Authenticator {
  constructor(
    private readonly identities: IdentityStore,
    private readonly limiter: LoginRateLimiter,
    private readonly tokens: TokenService,
    private readonly revocations: RevocationChecker,
  ) {}

  async login(username: string, secret: string, address: string): Promise<Identity> {
    await this.limiter.assertAllowed(username, address);
    const identity = await this.identities.verify(username, secret);
    if (!identity) {
      const exists = (await this.identities.lookup(username)) !== undefined;
      await this.limiter.recordFailure(exists ? username : undefined, address);
      throw new CodedError(DistributionErrors.UNAUTHORIZED, 'invalid username or password');
    }
    await this.limiter.recordSuccess(username);
    return identity;
  }

  /**
   * The refresh_token grant, limited per address as a password is, so guessing tokens is no cheaper than
   * guessing passwords. Only a token we signed names an account: from then on that account's limit applies
   * too, and a token that no longer holds counts against it. It is honoured only while its account exists
   * and may log in (a deleted or expired robot may not), and has not changed since (a new password ends the
   * sessions the old one started). A success does not clear the account's count: only the password proves
   * the password.
   */
  async refresh(token: string, address: string): Promise<Identity> {
    await this.limiter.assertAllowed(undefined, address);
    const verified = this.verifiedRefreshToken(token);
    if (!verified) {
      await this.limiter.recordFailure(undefined, address);
      throw invalidRefreshToken();
    }
    await this.limiter.assertAllowed(verified.subject, address);
    const identity = await this.identities.lookup(verified.subject);
    if (!identity || (await this.revocations.accountGeneration(identity)) !== verified.generation) {
      await this.limiter.recordFailure(verified.subject, address);
      throw invalidRefreshToken();
    }
    return identity;
  }

  private verifiedRefreshToken(token: string): { subject: string; generation: number } | undefined {
    try {
      return this.tokens.verifyRefreshToken(token);
    } catch (error) {
      if (error instanceof InvalidTokenError) return undefined;
      throw error;
    }
  }
}

function invalidRefreshToken(): CodedError {
  return new CodedError(DistributionErrors.UNAUTHORIZED, 'invalid or expired refresh token');
}

/** `Authorization: Basic ...` as username and password, or undefined if the header is absent or not Basic. */
export function basicCredentials(header: string | undefined): { username: string; password: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const separator = decoded.indexOf(':');
  if (separator < 0) return undefined;
  return { username: decoded.slice(0, separator), password: decoded.slice(separator + 1) };
}
