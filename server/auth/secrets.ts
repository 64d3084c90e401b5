import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';

// bcryptjs at cost 10 takes ~70 ms: slow enough to make offline guessing expensive, fast enough for a login.
const BCRYPT_COST = 10;
/**
 * Compared against when the account does not exist, so an unknown name costs as long as a wrong password: a cost-10
 * hash of random bytes nobody kept. A literal, because hashing one at start held every registry's start for 70-370 ms.
 */
export const UNKNOWN_ACCOUNT_HASH = '$2b$10$ZQDDUpjoMbC34VZoHSYh8u/OvuJgHWEMr6fbheTV.tUVAEiIWDXsC';

export function hashPassword(password: string): Promise<string> {
  return bcrypt.hash(password, BCRYPT_COST);
}

/** bcrypt's own comparison is constant-time; `hash` undefined still spends the time of a real check. */
export async function passwordMatches(password: string, hash: string | undefined): Promise<boolean> {
  const matches = await bcrypt.compare(password, hash ?? UNKNOWN_ACCOUNT_HASH);
  return hash !== undefined && matches;
}

/**
 * 256 random bits (robot secrets, join tokens, node credentials): too long to guess, so a fast hash is enough to
 * store it (no bcrypt cost per pull).
 */
export function newRandomSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashRandomSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Compares digests, not the strings, so the time taken reveals nothing about the stored value. */
export function randomSecretMatches(secret: string, storedHash: string | undefined): boolean {
  const presented = createHash('sha256').update(secret).digest();
  const stored = Buffer.from(storedHash ?? '', 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}
