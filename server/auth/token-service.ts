import { randomUUID, type KeyObject } from 'node:crypto';
import jwt, { type Algorithm, type JwtPayload } from 'jsonwebtoken';
import type { ExternalIssuer } from './external-issuers.js';
import type { SigningKey, VerificationKey } from './keys.js';
import type { Access } from './scope.js';

export interface TokenServiceOptions {
  issuer: string;
  /** The `service` clients name and the audience of every token issued. */
  service: string;
  ttlSeconds: number;
  refreshTtlSeconds: number;
  key: SigningKey;
  /** Retired signing keys: their tokens are still accepted until they expire, none are signed with them. */
  previousKeys: readonly VerificationKey[];
  externalIssuers: readonly ExternalIssuer[];
}

export interface IssuedToken {
  token: string;
  expiresIn: number;
  issuedAt: string;
}

export interface VerifiedToken {
  subject: string;
  access: Access[];
  /** Issued by this registry (so its subject is one of our accounts), not by an external issuer. */
  local: boolean;
  /** Of a local token: the revision it was issued at (revocation.ts). */
  revision?: string;
  /** Seconds since the epoch. */
  issuedAt: number;
}

export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError';
}

// Only asymmetric algorithms, ever: with an HS* algorithm allowed, the public key would become a shared secret.
const EXTERNAL_ALGORITHMS: Algorithm[] = ['RS256', 'ES256', 'RS384', 'ES384', 'RS512', 'ES512'];
const CLOCK_TOLERANCE_SECONDS = 5;

/**
 * Issues and verifies the registry's JWTs. Access tokens carry the Docker `access` claim; refresh tokens
 * (what `docker login` stores) carry none and have their own audience, so neither can pass for the other.
 */
export class TokenService {
  private readonly refreshAudience: string;
  private readonly localKeys = new Map<string, VerificationKey>();

  constructor(private readonly options: TokenServiceOptions) {
    this.refreshAudience = `${options.service}#refresh`;
    for (const key of [options.key, ...options.previousKeys]) if (!this.localKeys.has(key.kid)) this.localKeys.set(key.kid, key);
  }

  /** The public keys of the current and the retired signing keys, as the JWKS serves them. */
  get jwks(): { keys: object[] } {
    return { keys: [...this.localKeys.values()].map((key) => key.jwk) };
  }

  /** `revision`: what the subject's access rested on when it was granted (revocation.ts), checked on every use. */
  issueAccessToken(subject: string, access: Access[], revision: string): IssuedToken {
    const now = Math.floor(Date.now() / 1000);
    const token = this.sign({ sub: subject, access, rev: revision, nbf: now, iat: now }, this.options.service, this.options.ttlSeconds);
    return { token, expiresIn: this.options.ttlSeconds, issuedAt: new Date(now * 1000).toISOString() };
  }

  /** `generation`: the account's generation now; a later change to the account makes the refresh token useless. */
  issueRefreshToken(subject: string, generation: number): string {
    const now = Math.floor(Date.now() / 1000);
    return this.sign({ sub: subject, gen: generation, nbf: now, iat: now }, this.refreshAudience, this.options.refreshTtlSeconds);
  }

  /** Async only for an external issuer's JWKS URL, fetched when a token names a key not yet known. */
  async verifyAccessToken(token: string): Promise<VerifiedToken> {
    const { header, payload } = decode(token);
    const external =
      payload.iss === this.options.issuer ? undefined : this.options.externalIssuers.find((issuer) => issuer.issuer === payload.iss);
    const verified = external
      ? verify(token, await external.keyFor(header), EXTERNAL_ALGORITHMS, external.issuer, external.audience)
      : verifyLocal(token, this.localKey(header.kid), this.options.issuer, this.options.service);
    return {
      subject: verified.sub ?? '',
      access: parseAccessClaim(verified.access),
      local: external === undefined,
      revision: typeof verified.rev === 'string' ? verified.rev : undefined,
      issuedAt: verified.iat ?? 0,
    };
  }

  /** The subject a refresh token was issued to, and that account's generation then. */
  verifyRefreshToken(token: string): { subject: string; generation: number } {
    const { header } = decode(token);
    const payload = verifyLocal(token, this.localKey(header.kid), this.options.issuer, this.refreshAudience);
    if (!payload.sub) throw new InvalidTokenError('refresh token without subject');
    if (typeof payload.gen !== 'number') throw new InvalidTokenError('refresh token without generation');
    return { subject: payload.sub, generation: payload.gen };
  }

  private sign(payload: object, audience: string, ttlSeconds: number): string {
    const { key } = this.options;
    return jwt.sign(payload, key.privateKey, {
      algorithm: key.algorithm,
      keyid: key.kid,
      issuer: this.options.issuer,
      audience,
      expiresIn: ttlSeconds,
      jwtid: randomUUID(),
    });
  }

  private localKey(kid: string | undefined): VerificationKey | undefined {
    return kid === undefined ? undefined : this.localKeys.get(kid);
  }
}

function decode(token: string): { header: jwt.JwtHeader; payload: JwtPayload } {
  const decoded = jwt.decode(token, { complete: true });
  if (!decoded || typeof decoded.payload !== 'object') throw new InvalidTokenError('malformed token');
  return { header: decoded.header, payload: decoded.payload };
}

/** Each local key verifies only with its own algorithm: an RS256 key never accepts, say, an HS256 token. */
function verifyLocal(token: string, key: VerificationKey | undefined, issuer: string, audience: string): JwtPayload {
  return verify(token, key?.publicKey, key ? [key.algorithm] : [], issuer, audience);
}

function verify(token: string, key: KeyObject | undefined, algorithms: Algorithm[], issuer: string, audience: string): JwtPayload {
  if (!key) throw new InvalidTokenError('token signed by an unknown key');
  try {
    const payload = jwt.verify(token, key, { algorithms, issuer, audience, clockTolerance: CLOCK_TOLERANCE_SECONDS });
    if (typeof payload !== 'object' || payload.exp === undefined) throw new InvalidTokenError('token without expiry');
    return payload;
  } catch (error) {
    throw error instanceof InvalidTokenError ? error : new InvalidTokenError((error as Error).message);
  }
}

/** A malformed access claim makes the whole token invalid rather than silently granting nothing. */
function parseAccessClaim(claim: unknown): Access[] {
  if (claim === undefined) return [];
  const valid =
    Array.isArray(claim) &&
    claim.every(
      (entry: Partial<Access>) =>
        typeof entry?.type === 'string' &&
        typeof entry.name === 'string' &&
        Array.isArray(entry.actions) &&
        entry.actions.every((action) => typeof action === 'string'),
    );
  if (!valid) throw new InvalidTokenError('malformed access claim');
  return (claim as Access[]).map(({ type, name, actions }) => ({ type, name, actions }));
}
