import { parseAuthChallenges, type AuthChallenge } from './auth-challenge.js';
import { RegistryError } from './registry-error.js';

export interface Credentials {
  username: string;
  password: string;
}

const TOKEN_TIMEOUT_MS = 30_000;

/**
 * Answers a registry's 401 the way docker does: a Bearer challenge is answered with a token fetched from
 * its realm (anonymously, or with Basic credentials if the user gave some), a Basic challenge with the
 * credentials themselves. Tokens are kept per scope so one pull fetches one token.
 */
export class RegistryAuthenticator {
  private readonly tokens = new Map<string, string>();
  private basicAccepted = false;

  constructor(private readonly credentials?: Credentials) {}

  /** The Authorization header to send for requests in this repository, if a challenge was answered before. */
  authorization(repository: string): string | undefined {
    const token = this.tokens.get(pullScope(repository));
    if (token) return `Bearer ${token}`;
    return this.basicAccepted ? basicAuthorization(this.credentials) : undefined;
  }

  /** Prepares an answer to a 401's WWW-Authenticate header; throws if no challenge can be answered. */
  async answer(wwwAuthenticate: string | null, repository: string): Promise<void> {
    const challenges = parseAuthChallenges(wwwAuthenticate);
    const bearer = challenges.find((challenge) => challenge.scheme === 'bearer');
    if (bearer) {
      this.tokens.set(pullScope(repository), await this.fetchToken(bearer, [bearer.params.scope ?? pullScope(repository)]));
      return;
    }
    if (challenges.some((challenge) => challenge.scheme === 'basic') && this.credentials && !this.basicAccepted) {
      this.basicAccepted = true;
      return;
    }
    throw new RegistryError(401, `unauthorized: ${this.credentials ? 'credentials were refused' : 'authentication required'}`);
  }

  /**
   * `login`: proves the credentials the way docker does. A Bearer challenge is answered by asking its token
   * server for a token with no scope (which needs valid credentials, not any permission); a Basic challenge
   * means the caller repeats its request with `authorization('')`.
   */
  async login(wwwAuthenticate: string | null): Promise<'token' | 'basic'> {
    if (!this.credentials) throw new RegistryError(401, 'unauthorized: no credentials');
    const challenges = parseAuthChallenges(wwwAuthenticate);
    const bearer = challenges.find((challenge) => challenge.scheme === 'bearer');
    if (bearer) {
      await this.fetchToken(bearer, []);
      return 'token';
    }
    if (challenges.some((challenge) => challenge.scheme === 'basic')) {
      this.basicAccepted = true;
      return 'basic';
    }
    throw new RegistryError(401, `unauthorized: the registry asks for an unsupported authentication (${wwwAuthenticate ?? 'none'})`);
  }

  /**
   * The Authorization header that answers a 401 for exactly these scopes: a push asks for
   * `repository:<target>:pull,push` and, to mount a blob, `repository:<source>:pull` in one token.
   */
  async authorizationFor(wwwAuthenticate: string | null, scopes: readonly string[]): Promise<string> {
    const challenges = parseAuthChallenges(wwwAuthenticate);
    const bearer = challenges.find((challenge) => challenge.scheme === 'bearer');
    if (bearer) return `Bearer ${await this.fetchToken(bearer, scopes)}`;
    const basic = basicAuthorization(this.credentials);
    if (basic && challenges.some((challenge) => challenge.scheme === 'basic')) return basic;
    throw new RegistryError(401, `unauthorized: ${this.credentials ? 'credentials were refused' : 'authentication required'}`);
  }

  /** A token for these scopes; with none, a token that only proves the credentials (login). */
  private async fetchToken(challenge: AuthChallenge, scopes: readonly string[]): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) throw new RegistryError(401, 'Bearer challenge without a realm');
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    if (this.credentials) url.searchParams.set('account', this.credentials.username);
    const authorization = basicAuthorization(this.credentials);
    const response = await fetch(url, {
      headers: authorization ? { Authorization: authorization } : {},
      signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS),
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new RegistryError(response.status, `token request to ${url.origin}${url.pathname} failed with ${response.status}`);
    }
    const body = (await response.json()) as { token?: unknown; access_token?: unknown };
    const token = typeof body.token === 'string' ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '') throw new RegistryError(401, 'token response has no token');
    return token;
  }
}

function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

function basicAuthorization(credentials: Credentials | undefined): string | undefined {
  if (!credentials) return undefined;
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}
