import path from 'node:path';
import { readJsonIfExists, writeJsonAtomic } from '../support/json-file.js';
import type { Platform } from '../../oci/platform.js';

export interface LayerRecord {
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
  chainId: string;
}

/** A pulled image: what its reference resolved to and every blob and snapshot it needs. */
export interface ImageRecord {
  /** The key: `registry/repository:tag`, or `registry/repository@digest` for a pull by digest. */
  reference: string;
  registry: string;
  repository: string;
  tag: string | undefined;
  /** What the reference resolved to: an index, or the manifest itself. */
  digest: string;
  manifestDigest: string;
  configDigest: string;
  layers: LayerRecord[];
  platform: Platform;
  created: string | undefined;
  /** Bytes of the uncompressed layers. */
  size: number;
  pulledAt: string;
}

export interface ImageStore {
  list(): Promise<ImageRecord[]>;
  get(reference: string): Promise<ImageRecord | undefined>;
  put(record: ImageRecord): Promise<void>;
  remove(reference: string): Promise<ImageRecord | undefined>;
}

/**
 * All image records in one JSON file, rewritten whole (temp file + rename) on each change: images number in
 * the hundreds at most, and a reader never sees a torn file. Changes are serialized within the daemon.
 */
export class JsonFileImageStore implements ImageStore {
  private readonly file: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'images.json');
  }

  async list(): Promise<ImageRecord[]> {
    await this.queue;
    return Object.values(await this.read());
  }

  async get(reference: string): Promise<ImageRecord | undefined> {
    await this.queue;
    return (await this.read())[reference];
  }

  put(record: ImageRecord): Promise<void> {
    return this.change((records) => {
      records[record.reference] = record;
    });
  }

  remove(reference: string): Promise<ImageRecord | undefined> {
    return this.change((records) => {
      const removed = records[reference];
      delete records[reference];
      return removed;
    });
  }

  private change<T>(mutate: (records: Record<string, ImageRecord>) => T): Promise<T> {
    const next = this.queue.then(async () => {
      const records = await this.read();
      const result = mutate(records);
      await writeJsonAtomic(this.file, records);
      return result;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async read(): Promise<Record<string, ImageRecord>> {
    return (await readJsonIfExists<Record<string, ImageRecord>>(this.file)) ?? {};
  }
}
