import { randomBytes } from 'node:crypto';
import { hashRandomSecret, newRandomSecret } from './secrets.js';

/**
 * Join tokens, node credentials and build worker tokens: `<prefix>.<id>.<secret>`. Only the SHA-256 of the secret is stored (the
 * secret is random, 256 bits: a slow hash would add nothing), found by its id and compared in constant time
 * (randomSecretMatches).
 */
export interface IssuedSecret {
  id: string;
  token: string;
  hash: string;
}

export function issueSecret(prefix: string, id = randomBytes(8).toString('hex')): IssuedSecret {
  const secret = newRandomSecret();
  return { id, token: `${prefix}.${id}.${secret}`, hash: hashRandomSecret(secret) };
}

// One pattern per prefix, compiled once: every node request is authenticated with one.
const tokenPatterns = new Map<string, RegExp>();

/** The id and secret of a token of this prefix, or undefined when it is not one. */
export function splitSecret(prefix: string, token: string): { id: string; secret: string } | undefined {
  let pattern = tokenPatterns.get(prefix);
  if (!pattern) {
    pattern = new RegExp(`^${prefix.replace(/[.-]/g, '\\$&')}\\.([A-Za-z0-9_.-]+)\\.([A-Za-z0-9_-]{43})$`);
    tokenPatterns.set(prefix, pattern);
  }
  const match = pattern.exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}
