import type { Redis } from 'ioredis';
import { RegistryKeys } from '../metadata/keys.js';
import { CodedError, DistributionErrors } from '../../platform/errors.js';

export interface RateLimitOptions {
  maxFailuresPerAccount: number;
  maxFailuresPerAddress: number;
  windowSeconds: number;
}

/**
 * Counts failed logins per account and per client address in fixed windows kept in Redis (so every replica
 * sees the same counts). Per account stops guessing one password from many addresses; per address stops
 * one client trying many accounts. While either is over its limit every login is refused, right or wrong.
 */
export class LoginRateLimiter {
  private readonly registryKeys: RegistryKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly options: RateLimitOptions,
  ) {
    this.registryKeys = new RegistryKeys(prefix);
  }

  /**
   * Throws 429 TOOMANYREQUESTS with Retry-After while the account or the address is locked out. `account`
   * undefined (no account vouched for: an unknown name, a forged token): only the address counts.
   */
  async assertAllowed(account: string | undefined, address: string): Promise<void> {
    const limited = this.limited(account, address);
    const counts = await this.redis.mget(...limited.map(({ key }) => key));
    const blocked = limited.filter(({ limit }, index) => Number(counts[index] ?? 0) >= limit).map(({ key }) => key);
    if (blocked.length === 0) return;
    const remainingMs = await Promise.all(blocked.map((key) => this.redis.pttl(key)));
    // Rounded up: a client that waits exactly this long must find the lock gone.
    const retryAfter = Math.max(1, ...remainingMs.map((ms) => Math.ceil(ms / 1000)));
    throw new CodedError(DistributionErrors.TOOMANYREQUESTS, 'too many failed logins, retry later', {
      headers: { 'Retry-After': String(retryAfter) },
    });
  }

  async recordFailure(account: string | undefined, address: string): Promise<void> {
    const transaction = this.redis.multi();
    for (const { key } of this.limited(account, address)) transaction.incr(key).expire(key, this.options.windowSeconds, 'NX');
    await transaction.exec();
  }

  /** A successful login clears the account's count; the address's stays, or one good account would unlock guessing others. */
  async recordSuccess(account: string): Promise<void> {
    await this.redis.del(this.keys(account, '')[0]);
  }

  private limited(account: string | undefined, address: string): Array<{ key: string; limit: number }> {
    const [accountKey, addressKey] = this.keys(account ?? '', address);
    const limits = [{ key: addressKey, limit: this.options.maxFailuresPerAddress }];
    return account === undefined ? limits : [{ key: accountKey, limit: this.options.maxFailuresPerAccount }, ...limits];
  }

  private keys(account: string, address: string): [string, string] {
    return [this.registryKeys.loginFailuresOfAccount(account), this.registryKeys.loginFailuresOfAddress(address)];
  }
}
