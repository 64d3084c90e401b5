import type { Redis } from 'ioredis';
import { LuaScript } from '../metadata/redis-metadata-store.js';
import type { StoredBlob } from '../storage/blob-store.js';
import {
  deleteManifestRecordsScript,
  deleteUntaggedManifestsScript,
  expireUploadScript,
  finishBlobsScript,
  tombstoneBlobsScript,
  tombstoneOrphansScript,
  unlinkBlobsScript,
} from './gc-scripts.js';

// Keys per SCAN/SSCAN/HSCAN/ZSCAN round trip: the collector never holds more than a few such pages in memory.
const SCAN_COUNT = 1000;

const scripts = {
  tombstoneBlobs: new LuaScript(tombstoneBlobsScript),
  tombstoneOrphans: new LuaScript(tombstoneOrphansScript),
  finishBlobs: new LuaScript(finishBlobsScript),
  deleteUntaggedManifests: new LuaScript(deleteUntaggedManifestsScript),
  deleteManifestRecords: new LuaScript(deleteManifestRecordsScript),
  unlinkBlobs: new LuaScript(unlinkBlobsScript),
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
export type ScratchSet = 'gc:mark' | 'gc:live' | 'gc:doomed' | 'gc:repo-mark' | 'gc:manifest-mark';

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
    const sets: ScratchSet[] = ['gc:mark', 'gc:live', 'gc:doomed', 'gc:repo-mark', 'gc:manifest-mark'];
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

  blobs(): AsyncIterable<string[]> {
    return this.suffixesOf('b:');
  }

  /** Digests of every manifest record (m:<digest>), linked or not. */
  manifestRecords(): AsyncIterable<string[]> {
    return this.suffixesOf('m:');
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

  /**
   * Tombstones the unmarked blobs untouched since the cutoff, in one script; per digest its size if it is
   * (or, dry, would be) deleted.
   */
  async tombstoneBlobs(digests: string[], cutoff: number, dryRun: boolean): Promise<(number | undefined)[]> {
    return sizesOf(await scripts.tombstoneBlobs.run(this.redis, [this.prefix, cutoff, flag(dryRun), ...digests]));
  }

  /** Tombstones the stored blobs that have no record; per blob its size if it is (or, dry, would be) deleted. */
  async tombstoneOrphans(blobs: StoredBlob[], dryRun: boolean): Promise<(number | undefined)[]> {
    const pairs = blobs.flatMap((blob) => [blob.digest, blob.size]);
    return sizesOf(await scripts.tombstoneOrphans.run(this.redis, [this.prefix, flag(dryRun), ...pairs]));
  }

  async whichAreTombstoned(digests: string[]): Promise<boolean[]> {
    const states = await Promise.all(digests.map((digest) => this.redis.hget(this.key(`b:${digest}`), 'state')));
    return states.map((state) => state === 'deleting');
  }

  /** Drops tombstoned records once their bytes are gone; per digest its size, or undefined if it was not tombstoned. */
  async finishBlobs(digests: string[]): Promise<(number | undefined)[]> {
    return sizesOf(await scripts.finishBlobs.run(this.redis, [this.prefix, ...digests]));
  }

  /** How many of the repository's untagged manifests were (or, dry, would be) deleted. */
  async deleteUntaggedManifests(repository: string, digests: string[], cutoff: number, dryRun: boolean): Promise<number> {
    return Number(await scripts.deleteUntaggedManifests.run(this.redis, [this.prefix, repository, cutoff, flag(dryRun), ...digests]));
  }

  /** How many of the manifest records were (or, dry, would be) deleted. */
  async deleteManifestRecords(digests: string[], cutoff: number, dryRun: boolean): Promise<number> {
    return Number(await scripts.deleteManifestRecords.run(this.redis, [this.prefix, cutoff, flag(dryRun), ...digests]));
  }

  /** How many of the repository's links were (or, dry, would be) dropped. */
  async unlinkBlobs(repository: string, digests: string[], cutoff: number, dryRun: boolean): Promise<number> {
    return Number(await scripts.unlinkBlobs.run(this.redis, [this.prefix, repository, cutoff, flag(dryRun), ...digests]));
  }

  async expireUpload(upload: UploadRecord): Promise<boolean> {
    return (await scripts.expireUpload.run(this.redis, [this.prefix, upload.id, upload.updatedAt])) === 1;
  }

  /** What follows `<prefix><kind>` in the name of every key that starts so, page by page. */
  private async *suffixesOf(kind: string): AsyncIterable<string[]> {
    const start = this.key(kind).length;
    for await (const keys of this.redis.scanStream({ match: this.key(`${kind}*`), count: SCAN_COUNT }) as AsyncIterable<string[]>) {
      yield keys.map((key) => key.slice(start));
    }
  }

  private key(suffix: string): string {
    return `${this.prefix}${suffix}`;
  }

  private repoKey(repository: string, suffix: string): string {
    return `${this.prefix}r:${repository}:${suffix}`;
  }
}

/** Lua returns each size as a string and false (nil here) for a blob that is kept. */
function sizesOf(reply: unknown): (number | undefined)[] {
  return (reply as (string | null)[]).map((size) => (typeof size === 'string' ? Number(size) : undefined));
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
