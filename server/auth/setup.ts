import type { Redis } from 'ioredis';
import type { Middleware } from 'koa';
import type { Logger } from '../../platform/logger.js';
import { ConfigError } from '../../platform/config.js';
import type { Config } from '../config.js';
import { PASS_THROUGH } from '../http/router.js';
import type { AdminApiServices } from '../routes/admin-api.js';
import type { TokenEndpointServices } from '../routes/token.js';
import { OPEN_ACCESS, type AccessGuard } from './access-guard.js';
import { adminGuard } from './admin-guard.js';
import { Authenticator } from './authenticator.js';
import { RuleAuthorizer } from './authorizer.js';
import { bearerGuard } from './bearer-guard.js';
import { ExternalIssuer } from './external-issuers.js';
import { HtpasswdIdentityStore } from './htpasswd.js';
import { ChainedIdentityStore, type IdentityStore } from './identities.js';
import { loadPreviousKey, loadSigningKey } from './keys.js';
import { PermissionStore } from './permissions.js';
import { LoginRateLimiter } from './rate-limit.js';
import { RedisIdentityStore } from './redis-identities.js';
import { RevocationChecker, type DelegatedSubjects } from './revocation.js';
import { TokenService } from './token-service.js';

export interface RegistryAuth {
  guard: AccessGuard;
  /** In front of every admin route; lets everything through when auth is off. */
  adminGuard: Middleware;
  /** Signs the registry's tokens (a build job's push token too); undefined when auth is off. */
  tokens: TokenService | undefined;
  /** What the token endpoint and JWKS (open) and the account API (admin) call; undefined when auth is off, and they are not served. */
  api: { token: TokenEndpointServices; admin: AdminApiServices } | undefined;
}

/** The account and rule stores on the registry's Redis, shared by the server and the CLI. */
export function authStores(
  config: Config,
  redis: Redis,
): { accounts: RedisIdentityStore; identities: IdentityStore; rules: PermissionStore } {
  const accounts = new RedisIdentityStore(redis, config.redis.keyPrefix);
  const stores: IdentityStore[] = [accounts];
  if (config.auth.htpasswd) stores.push(new HtpasswdIdentityStore(config.auth.htpasswd));
  return { accounts, identities: new ChainedIdentityStore(stores), rules: new PermissionStore(redis, config.redis.keyPrefix) };
}

/** Builds token auth from the config, or the open guard when `auth.enabled` is false. */
export async function createAuth(config: Config, redis: Redis, delegated: DelegatedSubjects, logger?: Logger): Promise<RegistryAuth> {
  if (!config.auth.enabled) return { guard: OPEN_ACCESS, adminGuard: PASS_THROUGH, tokens: undefined, api: undefined };
  const { token, rateLimit } = config.auth;
  const { accounts, identities, rules } = authStores(config, redis);
  const key = await loadSigningKey({ algorithm: token.algorithm, keyFile: token.signingKey, dataDir: config.dataDir });
  const previousKeys = await Promise.all(
    token.previousKeys.map((file, index) => loadPreviousKey(file, `auth.token.previousKeys[${index}]`)),
  );
  const externalIssuers = config.auth.externalIssuers.map((issuer, index) => {
    try {
      return new ExternalIssuer({ ...issuer, audience: issuer.audience ?? token.service }, logger);
    } catch (error) {
      throw new ConfigError(`auth.externalIssuers[${index}] (${issuer.issuer}): ${(error as Error).message}`);
    }
  });
  await Promise.all(externalIssuers.map((issuer) => issuer.start()));
  const tokens = new TokenService({ ...token, key, previousKeys, externalIssuers });
  const authorizer = new RuleAuthorizer(rules);
  const revocations = new RevocationChecker(redis, config.redis.keyPrefix, identities, token.revocationCacheSeconds * 1000, delegated);
  const authenticator = new Authenticator(identities, new LoginRateLimiter(redis, config.redis.keyPrefix, rateLimit), tokens, revocations);
  return {
    guard: bearerGuard({ tokens, identities, authorizer, revocations, service: token.service, realm: token.realm }),
    adminGuard: adminGuard({ authenticator, tokens, identities, revocations }),
    tokens,
    api: { token: { authenticator, authorizer, tokens, revocations }, admin: { authorizer, identities, accounts, rules } },
  };
}
