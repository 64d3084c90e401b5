import { RegistryError } from '../errors.js';
import type { Identity, IdentityStore } from './identities.js';
import type { LoginRateLimiter } from './rate-limit.js';
import type { RevocationChecker } from './revocation.js';
import { InvalidTokenError, type TokenService } from './token-service.js';

/** Logs accounts in: rate limits first, then the identity stores, counting every failure. */
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
      await this.limiter.recordFailure(username, address);
      throw new RegistryError('UNAUTHORIZED', 401, 'invalid username or password');
    }
    await this.limiter.recordSuccess(username);
    return identity;
  }

  /**
   * The refresh_token grant, limited and counted as a password is: per the account the token names (signed
   * or not, as a username is just typed in) and per address, so guessing tokens is no cheaper than guessing
   * passwords. It is honoured only while its account exists and may log in (a deleted or expired robot may
   * not), and has not changed since (a new password ends the sessions the old one started). A success does
   * not clear the account's count: only the password proves the password.
   */
  async refresh(token: string, address: string): Promise<Identity> {
    const account = this.tokens.claimedSubject(token);
    await this.limiter.assertAllowed(account, address);
    let identity: Identity | undefined;
    try {
      const { subject, generation } = this.tokens.verifyRefreshToken(token);
      identity = await this.identities.lookup(subject);
      if (identity && (await this.revocations.accountGeneration(identity)) !== generation) identity = undefined;
    } catch (error) {
      if (!(error instanceof InvalidTokenError)) throw error;
    }
    if (!identity) {
      await this.limiter.recordFailure(account, address);
      throw new RegistryError('UNAUTHORIZED', 401, 'invalid or expired refresh token');
    }
    return identity;
  }
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
