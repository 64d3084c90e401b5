import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Join tokens and node credentials: `<prefix>.<id>.<secret>`. Only the SHA-256 of the secret is stored (the
 * secret is random, 256 bits: a slow hash would add nothing), found by its id and compared in constant time.
 */
export interface IssuedSecret {
  id: string;
  token: string;
  hash: string;
}

export function issueSecret(prefix: string, id = randomBytes(8).toString('hex')): IssuedSecret {
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `${prefix}.${id}.${secret}`, hash: hashSecret(secret) };
}

/** The id and secret of a token of this prefix, or undefined when it is not one. */
export function splitSecret(prefix: string, token: string): { id: string; secret: string } | undefined {
  const match = new RegExp(`^${prefix.replace(/[.-]/g, '\\$&')}\\.([A-Za-z0-9_.-]+)\\.([A-Za-z0-9_-]{43})$`).exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const actual = Buffer.from(hashSecret(secret), 'hex');
  const expected = Buffer.from(storedHash, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
