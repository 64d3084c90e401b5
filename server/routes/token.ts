import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Authenticator } from '../auth/authenticator.js';
import { basicCredentials } from '../auth/authenticator.js';
import type { Authorizer } from '../auth/authorizer.js';
import { ANONYMOUS, type Identity } from '../auth/identities.js';
import { readFormBody } from '../auth/small-body.js';
import type { RevocationChecker } from '../auth/revocation.js';
import { parseScopes } from '../auth/scope.js';
import type { TokenService } from '../auth/token-service.js';
import { CodedError, DistributionErrors } from '../../platform/errors.js';

export interface TokenEndpointServices {
  authenticator: Authenticator;
  authorizer: Authorizer;
  tokens: TokenService;
  revocations: RevocationChecker;
}

/**
 * The Docker token endpoint: GET /token (Basic credentials or anonymous; what `docker login` and pulls use)
 * and POST /token (the OAuth2 password and refresh_token grants), plus the JWKS with the current and retired
 * signing keys.
 */
export function registerTokenRoutes(router: Router, services: TokenEndpointServices): void {
  router.get('/token', async (ctx: Context) => {
    const credentials = basicCredentials(ctx.get('Authorization') || undefined);
    if (ctx.get('Authorization') !== '' && !credentials)
      throw new CodedError(DistributionErrors.UNAUTHORIZED, 'only Basic credentials are accepted here');
    const identity = credentials ? await services.authenticator.login(credentials.username, credentials.password, ctx.ip) : ANONYMOUS;
    await respondWithToken(ctx, services, identity, queryValues(ctx, 'scope'), queryValues(ctx, 'offline_token')[0] === 'true');
  });

  router.post('/token', async (ctx: Context) => {
    const form = await readFormBody(ctx);
    const identity = await identityForGrant(ctx, services, form);
    await respondWithToken(ctx, services, identity, form.getAll('scope'), form.get('access_type') === 'offline');
  });

  router.get('/.well-known/jwks.json', (ctx: Context) => {
    ctx.body = services.tokens.jwks;
  });
}

async function identityForGrant(ctx: Context, services: TokenEndpointServices, form: URLSearchParams): Promise<Identity> {
  switch (form.get('grant_type')) {
    case 'password':
      return services.authenticator.login(form.get('username') ?? '', form.get('password') ?? '', ctx.ip);
    case 'refresh_token':
      return services.authenticator.refresh(form.get('refresh_token') ?? '', ctx.ip);
    default:
      throw new CodedError(DistributionErrors.UNSUPPORTED, 'grant_type must be password or refresh_token');
  }
}

/** Grants the part of the requested scopes the identity is allowed: asking for too much is never an error. */
async function respondWithToken(
  ctx: Context,
  services: TokenEndpointServices,
  identity: Identity,
  scopes: string[],
  offline: boolean,
): Promise<void> {
  // The revision first: a rule removed while the grant is worked out then revokes this token too.
  const revision = await services.revocations.revisionOf(identity);
  const access = await services.authorizer.grant(identity, parseScopes(scopes));
  const issued = services.tokens.issueAccessToken(identity.name, access, revision);
  const refreshToken =
    offline && identity.kind !== 'anonymous'
      ? services.tokens.issueRefreshToken(identity.name, await services.revocations.accountGeneration(identity))
      : undefined;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = {
    token: issued.token,
    access_token: issued.token,
    expires_in: issued.expiresIn,
    issued_at: issued.issuedAt,
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
  };
}

function queryValues(ctx: Context, key: string): string[] {
  const value = ctx.query[key];
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}
