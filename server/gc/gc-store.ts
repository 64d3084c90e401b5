import type { Redis } from 'ioredis';
import { LuaScript } from '../metadata/redis-metadata-store.js';
import {
  deleteUntaggedManifestScript,
  expireUploadScript,
  finishBlobScript,
  tombstoneBlobScript,
  unlinkBlobScript,
} from './gc-scripts.js';

// Keys per SCAN/SSCAN/HSCAN/ZSCAN round trip: the collector never holds more than a few such pages in memory.
const SCAN_COUNT = 1000;

const scripts = {
  tombstoneBlob: new LuaScript(tombstoneBlobScript),
  finishBlob: new LuaScript(finishBlobScript),
  deleteUntaggedManifest: new LuaScript(deleteUntaggedManifestScript),
  unlinkBlob: new LuaScript(unlinkBlobScript),
  expireUpload: new LuaScript(expireUploadScript),
};

/** A manifest as stored under m:<digest>: what it names. */
export interface ManifestReferences {
  blobs: string[];
  manifests: string[];
  subject?: string;
}

export interface UploadRecord {
  id: string;
  repository: string;
  storeState: string;
  updatedAt: string;
}

/** The collector's scratch sets (see gc-scripts.ts); `gc:tombstones` is not scratch and survives runs. */
export type ScratchSet = 'gc:mark' | 'gc:live' | 'gc:doomed' | 'gc:repo-mark';

/**
 * The garbage collector's view of the Redis metadata: cursor iteration over the key layout of
 * redis-scripts.ts, page by page, and the collector's Lua scripts. Nothing here loads a whole set.
 */
export class GcStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** Redis's clock in ms, the clock every touchedAt is stamped with. */
  async now(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  async clearScratch(): Promise<void> {
    const sets: ScratchSet[] = ['gc:mark', 'gc:live', 'gc:doomed', 'gc:repo-mark'];
    await this.redis.del(...sets.map((name) => this.key(name)), this.key('gc:queue'));
  }

  async clear(set: ScratchSet): Promise<void> {
    await this.redis.del(this.key(set));
  }

  async add(set: ScratchSet, members: string[]): Promise<void> {
    if (members.length > 0) await this.redis.sadd(this.key(set), ...members);
  }

  /** Adds members; returns those that were not there yet. */
  async addNew(set: ScratchSet, members: string[]): Promise<string[]> {
    const added = await Promise.all(members.map((member) => this.redis.sadd(this.key(set), member)));
    return members.filter((_member, index) => added[index] === 1);
  }

  async whichAreMembers(set: ScratchSet, members: string[]): Promise<boolean[]> {
    if (members.length === 0) return [];
    return (await this.redis.smismember(this.key(set), ...members)).map((flag) => flag === 1);
  }

  async enqueue(items: string[]): Promise<void> {
    if (items.length > 0) await this.redis.rpush(this.key('gc:queue'), ...items);
  }

  async dequeue(count: number): Promise<string[]> {
    return (await this.redis.lpop(this.key('gc:queue'), count)) ?? [];
  }

  /** Repositories with at least one manifest. */
  repositories(): AsyncIterable<string[]> {
    return pairs(this.redis.zscanStream(this.key('repos'), { count: SCAN_COUNT }), (member) => member);
  }

  /** Repositories with blob links, whether or not they have manifests. */
  async *linkedRepositories(): AsyncIterable<string[]> {
    const start = this.key('r:').length;
    for await (const keys of this.redis.scanStream({ match: this.key('r:*:b'), type: 'set', count: SCAN_COUNT }) as AsyncIterable<string[]>) {
      yield keys.map((key) => key.slice(start, -':b'.length));
    }
  }

  manifestsOf(repository: string): AsyncIterable<string[]> {
    return this.redis.sscanStream(this.repoKey(repository, 'm'), { count: SCAN_COUNT });
  }

  linksOf(repository: string): AsyncIterable<string[]> {
    return this.redis.sscanStream(this.repoKey(repository, 'b'), { count: SCAN_COUNT });
  }

  /** The manifest digests a repository's tags point at (repeats possible). */
  taggedManifests(repository: string): AsyncIterable<string[]> {
    return pairs(this.redis.hscanStream(this.repoKey(repository, 'tagmap'), { count: SCAN_COUNT }), (_tag, digest) => digest);
  }

  /** Digests of the manifests whose subject is `digest` in the repository. */
  referrersOf(repository: string, digest: string): AsyncIterable<string[]> {
    return pairs(this.redis.hscanStream(this.repoKey(repository, `ref:${digest}`), { count: SCAN_COUNT }), (referrer) => referrer);
  }

  async references(digests: string[]): Promise<ManifestReferences[]> {
    const fields = await Promise.all(digests.map((digest) => this.redis.hmget(this.key(`m:${digest}`), 'blobs', 'manifests', 'subject')));
    return fields.map(([blobs, manifests, subject]) => ({
      blobs: blobs ? (JSON.parse(blobs) as string[]) : [],
      manifests: manifests ? (JSON.parse(manifests) as string[]) : [],
      subject: subject || undefined,
    }));
  }

  async *blobs(): AsyncIterable<string[]> {
    const start = this.key('b:').length;
    for await (const keys of this.redis.scanStream({ match: this.key('b:*'), count: SCAN_COUNT }) as AsyncIterable<string[]>) {
      yield keys.map((key) => key.slice(start));
    }
  }

  tombstones(): AsyncIterable<string[]> {
    return this.redis.sscanStream(this.key('gc:tombstones'), { count: SCAN_COUNT });
  }

  async *uploads(): AsyncIterable<UploadRecord[]> {
    const start = this.key('u:').length;
    for await (const keys of this.redis.scanStream({ match: this.key('u:*'), count: SCAN_COUNT }) as AsyncIterable<string[]>) {
      const records = await Promise.all(keys.map((key) => this.redis.hmget(key, 'repository', 'storeState', 'updatedAt')));
      yield records.flatMap(([repository, storeState, updatedAt], index) =>
        repository && updatedAt ? [{ id: keys[index]!.slice(start), repository, storeState: storeState ?? '', updatedAt }] : [],
      );
    }
  }

  /** Tombstones an unmarked blob untouched since the cutoff; its size if it is (or, dry, would be) deleted. */
  async tombstoneBlob(digest: string, cutoff: number, dryRun: boolean): Promise<number | undefined> {
    return sizeOf(await scripts.tombstoneBlob.run(this.redis, [this.prefix, digest, cutoff, flag(dryRun)]));
  }

  async isTombstoned(digest: string): Promise<boolean> {
    return (await this.redis.hget(this.key(`b:${digest}`), 'state')) === 'deleting';
  }

  /** Drops a tombstoned record once its bytes are gone; the blob's size, or undefined if it was not tombstoned. */
  async finishBlob(digest: string): Promise<number | undefined> {
    return sizeOf(await scripts.finishBlob.run(this.redis, [this.prefix, digest]));
  }

  async deleteUntaggedManifest(repository: string, digest: string, cutoff: number, dryRun: boolean): Promise<boolean> {
    return (await scripts.deleteUntaggedManifest.run(this.redis, [this.prefix, repository, digest, cutoff, flag(dryRun)])) === 1;
  }

  async unlinkBlob(repository: string, digest: string, cutoff: number, dryRun: boolean): Promise<boolean> {
    return (await scripts.unlinkBlob.run(this.redis, [this.prefix, repository, digest, cutoff, flag(dryRun)])) === 1;
  }

  async expireUpload(upload: UploadRecord): Promise<boolean> {
    return (await scripts.expireUpload.run(this.redis, [this.key(`u:${upload.id}`), upload.updatedAt])) === 1;
  }

  private key(suffix: string): string {
    return `${this.prefix}${suffix}`;
  }

  private repoKey(repository: string, suffix: string): string {
    return `${this.prefix}r:${repository}:${suffix}`;
  }
}

function sizeOf(reply: unknown): number | undefined {
  return typeof reply === 'string' ? Number(reply) : undefined;
}

function flag(value: boolean): string {
  return value ? '1' : '0';
}

/** ZSCAN and HSCAN pages are flat [field, value, field, value, ...] arrays. */
async function* pairs(stream: AsyncIterable<string[]>, pick: (field: string, value: string) => string): AsyncIterable<string[]> {
  for await (const page of stream) {
    const picked: string[] = [];
    for (let index = 0; index + 1 < page.length; index += 2) picked.push(pick(page[index]!, page[index + 1]!));
    yield picked;
  }
}
