import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ContentStore } from '../content/content-store.js';

/**
 * The build cache's index: a step's key (its parent's key, the expanded instruction, and for COPY/ADD the
 * content of exactly the files read) to the layer it made, or to "no layer" for a step that changed
 * nothing. The layers themselves are blobs in the agent's content store, so a hit whose snapshot was pruned
 * can still be unpacked from the store; a hit whose blob is gone is a miss.
 */

export interface CachedLayer {
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
  /** Bytes of the uncompressed tar. */
  uncompressedSize: number;
}

export interface CacheEntry {
  layer: CachedLayer | null;
  /** When the step first ran: its history time, so a cached rebuild (here or on another agent) gives the same image. */
  created: string;
}

export class BuildCache {
  constructor(
    private readonly directory: string,
    private readonly content: ContentStore,
  ) {}

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    const text = await readFile(this.file(key), 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    const entry = JSON.parse(text) as Partial<CacheEntry>;
    if (entry.layer === undefined || (entry.layer && !(await this.content.has(entry.layer.digest)))) return undefined;
    // Entries written before creation times were kept count as made now.
    return { layer: entry.layer, created: entry.created ?? new Date().toISOString() };
  }

  async put(key: string, entry: CacheEntry): Promise<void> {
    const temporary = `${this.file(key)}.${randomBytes(4).toString('hex')}`;
    await writeFile(temporary, JSON.stringify(entry));
    await rename(temporary, this.file(key));
  }

  private file(key: string): string {
    return path.join(this.directory, key.replace(':', '-'));
  }
}
