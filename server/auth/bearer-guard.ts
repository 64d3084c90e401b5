import type { Context } from 'koa';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { accessGuard, type AccessGuard } from './access-guard.js';
import type { Authorizer } from './authorizer.js';
import { ANONYMOUS, type IdentityStore } from './identities.js';
import type { RevocationChecker } from './revocation.js';
import { covers, formatScope, type Access } from './scope.js';
import { InvalidTokenError, type TokenService, type VerifiedToken } from './token-service.js';

export interface BearerGuardOptions {
  tokens: TokenService;
  identities: IdentityStore;
  authorizer: Authorizer;
  revocations: RevocationChecker;
  service: string;
  /** The token endpoint's URL; unset: this server's own /token as the client reached it. */
  realm?: string;
}

type ChallengeError = 'invalid_token' | 'insufficient_scope';

/**
 * Enforces Docker token auth on /v2/: a request needs a valid Bearer token whose access claim covers the
 * route. Missing or insufficient tokens get 401 with the challenge that tells the client which scope to
 * fetch; an account that could never get that scope gets 403 DENIED, since fetching another token is futile.
 */
export function bearerGuard(options: BearerGuardOptions): AccessGuard {
  const check = async (ctx: Context, needed: Access | undefined): Promise<void> => {
    const token = await verifiedToken(ctx, options, needed);
    if (!needed || needed.actions.every((action) => covers(token.access, needed.type, needed.name, action))) return;
    if (await mayNeverHave(options, token, needed)) throw new CodedError(DistributionErrors.DENIED);
    throw unauthorized(ctx, options, needed, 'insufficient_scope');
  };
  const allows = (ctx: Context, repository: string, action: string): boolean => {
    const token = ctx.state.token as VerifiedToken | undefined;
    return token !== undefined && covers(token.access, 'repository', repository, action);
  };
  // Our own accounts see the repositories their rules let them list and pull; an external issuer that
  // granted the catalog decided for itself.
  const catalogFilter = async (ctx: Context): Promise<((repository: string) => boolean) | undefined> => {
    const token = ctx.state.token as VerifiedToken | undefined;
    if (!token?.local) return undefined;
    const identity = token.subject === '' ? ANONYMOUS : await options.identities.lookup(token.subject);
    return identity ? options.authorizer.catalogFilter(identity) : () => false;
  };
  return accessGuard(check, allows, catalogFilter);
}

/** The request's token, verified and (if it is ours) not revoked: one cached lookup, no Redis round trip while cached. */
async function verifiedToken(ctx: Context, options: BearerGuardOptions, needed: Access | undefined): Promise<VerifiedToken> {
  const header = ctx.get('Authorization');
  if (header === '') throw unauthorized(ctx, options, needed);
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw unauthorized(ctx, options, needed, 'invalid_token');
  let token: VerifiedToken;
  try {
    token = await options.tokens.verifyAccessToken(match[1]!);
  } catch (error) {
    if (error instanceof InvalidTokenError) throw unauthorized(ctx, options, needed, 'invalid_token');
    throw error;
  }
  if (token.local && !(await options.revocations.isCurrent(token.subject, token.revision, token.issuedAt))) {
    throw unauthorized(ctx, options, needed, 'invalid_token', 'revoked token');
  }
  ctx.state.token = token;
  return token;
}

/** Only our own logged-in accounts can be judged: an anonymous or externally issued token just gets a 401. */
async function mayNeverHave(options: BearerGuardOptions, token: VerifiedToken, needed: Access): Promise<boolean> {
  if (!token.local || token.subject === '') return false;
  const identity = await options.identities.lookup(token.subject);
  if (!identity) return false;
  const [granted] = await options.authorizer.grant(identity, [needed]);
  return granted?.actions.length !== needed.actions.length;
}

function unauthorized(
  ctx: Context,
  options: BearerGuardOptions,
  needed: Access | undefined,
  error?: ChallengeError,
  message?: string,
): CodedError {
  const realm = options.realm ?? `${ctx.protocol}://${ctx.host}/token`;
  const parts = [`realm="${realm}"`, `service="${options.service}"`];
  if (needed) parts.push(`scope="${formatScope(needed)}"`);
  if (error) parts.push(`error="${error}"`);
  return new CodedError(DistributionErrors.UNAUTHORIZED, message ?? (error === 'invalid_token' ? 'invalid or expired token' : undefined), {
    headers: { 'WWW-Authenticate': `Bearer ${parts.join(',')}` },
    detail: needed ? [needed] : undefined,
  });
}
