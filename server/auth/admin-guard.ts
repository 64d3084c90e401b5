import type { Context, Middleware, Next } from 'koa';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { basicCredentials, type Authenticator } from './authenticator.js';
import type { Identity, IdentityStore } from './identities.js';
import type { RevocationChecker } from './revocation.js';
import { InvalidTokenError, type TokenService } from './token-service.js';

export interface AdminGuardServices {
  authenticator: Authenticator;
  tokens: TokenService;
  identities: IdentityStore;
  revocations: RevocationChecker;
}

/**
 * The admin API (accounts, garbage collection, webhooks, maintenance, whatever comes next) needs an account
 * with the admin role, proven by its Basic credentials or by a Bearer token this registry issued to it (any
 * scope: the role is what counts, and it is looked up on every call, so a demoted or deleted admin's token
 * stops working at once; a revoked token, see revocation.ts, is refused too). The app runs it in front of
 * every route of every admin router (app.ts), so no admin route can forget it.
 */
export function adminGuard(services: AdminGuardServices): Middleware {
  return async (ctx: Context, next: Next): Promise<void> => {
    const identity = await adminCaller(ctx, services);
    if (!identity.admin) throw new CodedError(DistributionErrors.DENIED, 'the admin API needs an account with the admin role');
    await next();
  };
}

async function adminCaller(ctx: Context, services: AdminGuardServices): Promise<Identity> {
  const header = ctx.get('Authorization');
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  if (bearer !== undefined) {
    const identity = await tokenIdentity(services, bearer);
    if (!identity) throw unauthorized('invalid or expired token');
    return identity;
  }
  const credentials = basicCredentials(header || undefined);
  if (!credentials) throw unauthorized('admin credentials required');
  return services.authenticator.login(credentials.username, credentials.password, ctx.ip);
}

/** The account a token of ours names, if it is valid and the account still exists; external issuers' subjects are not our accounts. */
async function tokenIdentity(services: AdminGuardServices, token: string): Promise<Identity | undefined> {
  try {
    const verified = await services.tokens.verifyAccessToken(token);
    if (!verified.local || verified.subject === '') return undefined;
    if (!(await services.revocations.isCurrent(verified.subject, verified.revision, verified.issuedAt))) return undefined;
    return await services.identities.lookup(verified.subject);
  } catch (error) {
    if (error instanceof InvalidTokenError) return undefined;
    throw error;
  }
}

function unauthorized(message: string): CodedError {
  return new CodedError(DistributionErrors.UNAUTHORIZED, message, { headers: { 'WWW-Authenticate': 'Basic realm="berth-admin"' } });
}
