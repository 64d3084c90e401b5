import type { Redis } from 'ioredis';
import { LeaseLostError } from '../gc/lease.js';
import { SCRATCH_SETS, type GcStore, type ManifestReferences, type ScratchSet, type UploadRecord } from '../gc/gc-store.js';
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
import { KeyFamily, RegistryKeys } from './keys.js';
import type { LeaseFence } from './metadata-store.js';
import { LuaScript } from '../redis/lua-script.js';

// Keys per SCAN/SSCAN/HSCAN/ZSCAN round trip: the collector never holds more than a few such pages in memory.
const SCAN_COUNT = 1000;

/**
 * Fencing: every script of the collector starts by checking, atomically with what it then does, that the
 * lease key (ARGV[1]) still holds this holder (ARGV[2]); both are removed from ARGV before the script proper
 * runs. Empty: an unfenced store (reads, or the tests of the scripts themselves).
 */
const FENCE_GUARD = `
if ARGV[1] ~= '' and redis.call('GET', ARGV[1]) ~= ARGV[2] then
  return redis.error_reply('LEASELOST ' .. ARGV[1] .. ' is no longer held by this process')
end
table.remove(ARGV, 1)
table.remove(ARGV, 1)
`;

const DELETE_KEYS_SCRIPT = `return redis.call('DEL', unpack(ARGV))`;
const POP_SCRIPT = `return redis.call('LPOP', ARGV[1], ARGV[2])`;

function fenced(source: string): LuaScript {
  return new LuaScript(FENCE_GUARD + source);
}

const scripts = {
  tombstoneBlobs: fenced(tombstoneBlobsScript),
  tombstoneOrphans: fenced(tombstoneOrphansScript),
  finishBlobs: fenced(finishBlobsScript),
  deleteUntaggedManifests: fenced(deleteUntaggedManifestsScript),
  deleteManifestRecords: fenced(deleteManifestRecordsScript),
  unlinkBlobs: fenced(unlinkBlobsScript),
  expireUpload: fenced(expireUploadScript),
  deleteKeys: fenced(DELETE_KEYS_SCRIPT),
  pop: fenced(POP_SCRIPT),
};

const UNFENCED = ['', ''];

/**
 * The garbage collector's store on the registry's Redis: cursor iteration over the key layout of
 * redis-scripts.ts and the collector's Lua scripts (gc-scripts.ts).
 */
export class RedisGcStore implements GcStore {
  private readonly keys: RegistryKeys;
  private readonly repoBlobKeys: KeyFamily;
  private readonly blobKeys: KeyFamily;
  private readonly manifestKeys: KeyFamily;
  private readonly uploadKeys: KeyFamily;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    /** The lease key and holder every write checks first (FENCE_GUARD). */
    private readonly fence: string[] = UNFENCED,
  ) {
    this.keys = new RegistryKeys(prefix);
    this.repoBlobKeys = new KeyFamily((repository) => this.keys.repoBlobs(repository));
    this.blobKeys = new KeyFamily((digest) => this.keys.blob(digest));
    this.manifestKeys = new KeyFamily((digest) => this.keys.manifest(digest));
    this.uploadKeys = new KeyFamily((id) => this.keys.upload(id));
  }

  fencedBy(fence: LeaseFence): GcStore {
    return new RedisGcStore(this.redis, this.keys.prefix, [this.keys.lease(fence.name), fence.holder]);
  }

  /** Redis's clock in ms, the clock every touchedAt is stamped with. */
  async now(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  async clearScratch(): Promise<void> {
    await this.run(scripts.deleteKeys, [...SCRATCH_SETS.map((set) => this.keys.gcScratch(set)), this.keys.gcQueue()]);
  }

  async clear(set: ScratchSet): Promise<void> {
    await this.run(scripts.deleteKeys, [this.keys.gcScratch(set)]);
  }

  async add(set: ScratchSet, members: string[]): Promise<void> {
    if (members.length > 0) await this.redis.sadd(this.keys.gcScratch(set), ...members);
  }

  async addNew(set: ScratchSet, members: string[]): Promise<string[]> {
    const added = await Promise.all(members.map((member) => this.redis.sadd(this.keys.gcScratch(set), member)));
    return members.filter((_member, index) => added[index] === 1);
  }

  async whichAreMembers(set: ScratchSet, members: string[]): Promise<boolean[]> {
    if (members.length === 0) return [];
    return (await this.redis.smismember(this.keys.gcScratch(set), ...members)).map((member) => member === 1);
  }

  async enqueue(items: string[]): Promise<void> {
    if (items.length > 0) await this.redis.rpush(this.keys.gcQueue(), ...items);
  }

  async dequeue(count: number): Promise<string[]> {
    return ((await this.run(scripts.pop, [this.keys.gcQueue(), count])) as string[] | null) ?? [];
  }

  repositories(): AsyncIterable<string[]> {
    return pairs(this.redis.zscanStream(this.keys.repositories(), { count: SCAN_COUNT }), (member) => member);
  }

  linkedRepositories(): AsyncIterable<string[]> {
    return this.idsOf(this.repoBlobKeys, 'set');
  }

  manifestsOf(repository: string): AsyncIterable<string[]> {
    return this.redis.sscanStream(this.keys.repoManifests(repository), { count: SCAN_COUNT });
  }

  linksOf(repository: string): AsyncIterable<string[]> {
    return this.redis.sscanStream(this.keys.repoBlobs(repository), { count: SCAN_COUNT });
  }

  taggedManifests(repository: string): AsyncIterable<string[]> {
    return pairs(this.redis.hscanStream(this.keys.repoTagMap(repository), { count: SCAN_COUNT }), (_tag, digest) => digest);
  }

  referrersOf(repository: string, digest: string): AsyncIterable<string[]> {
    return pairs(this.redis.hscanStream(this.keys.repoReferrers(repository, digest), { count: SCAN_COUNT }), (referrer) => referrer);
  }

  async references(digests: string[]): Promise<ManifestReferences[]> {
    const fields = await Promise.all(
      digests.map((digest) => this.redis.hmget(this.keys.manifest(digest), 'blobs', 'manifests', 'subject')),
    );
    return fields.map(([blobs, manifests, subject]) => ({
      blobs: blobs ? (JSON.parse(blobs) as string[]) : [],
      manifests: manifests ? (JSON.parse(manifests) as string[]) : [],
      subject: subject || undefined,
    }));
  }

  blobs(): AsyncIterable<string[]> {
    return this.idsOf(this.blobKeys);
  }

  manifestRecords(): AsyncIterable<string[]> {
    return this.idsOf(this.manifestKeys);
  }

  tombstones(): AsyncIterable<string[]> {
    return this.redis.sscanStream(this.keys.gcTombstones(), { count: SCAN_COUNT });
  }

  async *uploads(): AsyncIterable<UploadRecord[]> {
    for await (const keys of this.scan(this.uploadKeys)) {
      const records = await Promise.all(keys.map((key) => this.redis.hmget(key, 'repository', 'storeState', 'updatedAt')));
      yield records.flatMap(([repository, storeState, updatedAt], index) =>
        repository && updatedAt ? [{ id: this.uploadKeys.idOf(keys[index]!), repository, storeState: storeState ?? '', updatedAt }] : [],
      );
    }
  }

  /**
   * Tombstones the unmarked blobs untouched since the cutoff, in one script; per digest its size if it is
   * (or, dry, would be) deleted.
   */
  async tombstoneBlobs(digests: string[], cutoff: number, dryRun: boolean): Promise<(number | undefined)[]> {
    return sizesOf(await this.run(scripts.tombstoneBlobs, [this.keys.prefix, cutoff, flag(dryRun), ...digests]));
  }

  async tombstoneOrphans(blobs: StoredBlob[], dryRun: boolean): Promise<(number | undefined)[]> {
    const digestSizes = blobs.flatMap((blob) => [blob.digest, blob.size]);
    return sizesOf(await this.run(scripts.tombstoneOrphans, [this.keys.prefix, flag(dryRun), ...digestSizes]));
  }

  async whichAreTombstoned(digests: string[]): Promise<boolean[]> {
    const states = await Promise.all(digests.map((digest) => this.redis.hget(this.keys.blob(digest), 'state')));
    return states.map((state) => state === 'deleting');
  }

  async finishBlobs(digests: string[]): Promise<(number | undefined)[]> {
    return sizesOf(await this.run(scripts.finishBlobs, [this.keys.prefix, ...digests]));
  }

  async deleteUntaggedManifests(repository: string, digests: string[], cutoff: number, dryRun: boolean): Promise<number> {
    return Number(await this.run(scripts.deleteUntaggedManifests, [this.keys.prefix, repository, cutoff, flag(dryRun), ...digests]));
  }

  async deleteManifestRecords(digests: string[], cutoff: number, dryRun: boolean): Promise<number> {
    return Number(await this.run(scripts.deleteManifestRecords, [this.keys.prefix, cutoff, flag(dryRun), ...digests]));
  }

  async unlinkBlobs(repository: string, digests: string[], cutoff: number, dryRun: boolean): Promise<number> {
    return Number(await this.run(scripts.unlinkBlobs, [this.keys.prefix, repository, cutoff, flag(dryRun), ...digests]));
  }

  async expireUpload(upload: UploadRecord): Promise<boolean> {
    return (await this.run(scripts.expireUpload, [this.keys.prefix, upload.id, upload.updatedAt])) === 1;
  }

  private async run(script: LuaScript, args: (string | number)[]): Promise<unknown> {
    try {
      return await script.run(this.redis, [...this.fence, ...args]);
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('LEASELOST')) throw new LeaseLostError(error.message, { cause: error });
      throw error;
    }
  }

  /** The family's argument of every key it built that exists, page by page. */
  private async *idsOf(family: KeyFamily, type?: 'set'): AsyncIterable<string[]> {
    for await (const keys of this.scan(family, type)) yield keys.map((key) => family.idOf(key));
  }

  private scan(family: KeyFamily, type?: 'set'): AsyncIterable<string[]> {
    const options = { match: family.match, count: SCAN_COUNT };
    return this.redis.scanStream(type ? { ...options, type } : options) as AsyncIterable<string[]>;
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
