import { readFileSync } from 'node:fs';
import type { Identity, IdentityStore } from './identities.js';
import { passwordMatches } from './secrets.js';

/**
 * Users from an Apache htpasswd file, for compatibility with registry:2 setups. Only bcrypt entries
 * (`htpasswd -B`) are accepted: the MD5 and SHA1 variants are too weak to keep. Read once at start.
 */
export class HtpasswdIdentityStore implements IdentityStore {
  private readonly hashes = new Map<string, string>();

  constructor(file: string) {
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, index) => {
      const trimmed = line.trim();
      if (trimmed === '' || trimmed.startsWith('#')) return;
      const separator = trimmed.indexOf(':');
      const hash = trimmed.slice(separator + 1);
      if (separator <= 0 || !/^\$2[aby]\$/.test(hash))
        throw new Error(`${file}:${index + 1}: not a bcrypt htpasswd entry (create it with htpasswd -B)`);
      this.hashes.set(trimmed.slice(0, separator), hash);
    });
  }

  async knows(username: string): Promise<boolean> {
    return this.hashes.has(username);
  }

  async verify(username: string, secret: string): Promise<Identity | undefined> {
    return (await passwordMatches(secret, this.hashes.get(username))) ? this.identity(username) : undefined;
  }

  async lookup(username: string): Promise<Identity | undefined> {
    return this.hashes.has(username) ? this.identity(username) : undefined;
  }

  private identity(name: string): Identity {
    return { kind: 'user', name, groups: [], admin: false };
  }
}
