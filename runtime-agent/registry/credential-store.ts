import path from 'node:path';
import { readJsonIfExists, writeJsonAtomic } from '../support/json-file.js';
import type { Credentials } from './registry-auth.js';

/**
 * Credentials saved by `login`, per registry host, in `<data-dir>/credentials.json` (mode 0600 inside the
 * 0700 data directory: root only, like docker's config.json, and likewise not encrypted). Pulls and runs use
 * them when the request brings none.
 */
export class CredentialStore {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'credentials.json');
  }

  async get(registry: string): Promise<Credentials | undefined> {
    return (await this.read())[registry];
  }

  async put(registry: string, credentials: Credentials): Promise<void> {
    await writeJsonAtomic(this.file, { ...(await this.read()), [registry]: credentials });
  }

  /** Whether there was something to remove. */
  async remove(registry: string): Promise<boolean> {
    const all = await this.read();
    if (!(registry in all)) return false;
    delete all[registry];
    await writeJsonAtomic(this.file, all);
    return true;
  }

  private async read(): Promise<Record<string, Credentials>> {
    return (await readJsonIfExists<Record<string, Credentials>>(this.file)) ?? {};
  }
}
