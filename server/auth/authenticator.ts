import { RegistryError } from '../errors.js';
import type { Identity, IdentityStore } from './identities.js';
import type { LoginRateLimiter } from './rate-limit.js';

/** Logs accounts in: rate limits first, then the identity stores, counting every failure. */
export class Authenticator {
  constructor(
    private readonly identities: IdentityStore,
    private readonly limiter: LoginRateLimiter,
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
