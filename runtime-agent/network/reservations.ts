import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ignoreMissing, listDirectory } from './state-files.js';

/**
 * Exclusive claims on names (an address, a host port) that survive a restart: one file per claimed name,
 * holding the owner's id. A claim is made with link(2), which fails when the name exists, so two attaches
 * at once (in one agent or two sharing the directory) never both win; the file appears with its owner
 * already written, so a reader never sees a claim without one.
 */
export class Reservations {
  constructor(private readonly directory: string) {}

  /** True if `owner` now holds `name`; false if someone already did. */
  async claim(name: string, owner: string): Promise<boolean> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    const draft = path.join(this.directory, `.${name}.${randomBytes(6).toString('hex')}`);
    await writeFile(draft, owner, { mode: 0o600 });
    try {
      await link(draft, path.join(this.directory, name));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      await unlink(draft);
    }
  }

  async names(): Promise<Set<string>> {
    return new Set((await this.claims()).map((claim) => claim.name));
  }

  async owners(): Promise<Set<string>> {
    return new Set((await this.claims()).map((claim) => claim.owner));
  }

  /** Gives every claim of `from` to `to`, each in one step (rename(2) over the claim): never unclaimed in between. */
  async transfer(from: string, to: string): Promise<void> {
    for (const claim of await this.claims()) {
      if (claim.owner !== from) continue;
      const draft = path.join(this.directory, `.${claim.name}.${randomBytes(6).toString('hex')}`);
      await writeFile(draft, to, { mode: 0o600 });
      await rename(draft, path.join(this.directory, claim.name));
    }
  }

  async releaseAllOf(owner: string): Promise<void> {
    for (const claim of await this.claims()) {
      if (claim.owner === owner) await unlink(path.join(this.directory, claim.name)).catch(ignoreMissing);
    }
  }

  private async claims(): Promise<{ name: string; owner: string }[]> {
    const entries = await listDirectory(this.directory);
    const claims = await Promise.all(
      entries.map(async (name) => {
        if (name.startsWith('.')) return undefined; // a claim being made
        const owner = await readFile(path.join(this.directory, name), 'utf8').catch(ignoreMissing);
        return owner === undefined ? undefined : { name, owner };
      }),
    );
    return claims.filter((claim) => claim !== undefined);
  }
}
